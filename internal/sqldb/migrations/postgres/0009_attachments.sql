-- Attachments: uploaded files (summaries, lab results, images, DICOM). The
-- bytes live in the blob store under blob_key; this row is what the API
-- shows and what access is decided on. A file belongs to the hospital of its
-- uploader; another hospital reaches it only through a record that carries
-- it, such as a referral ticket it is a party to (referral_attachments).
CREATE TABLE attachments (
    id           uuid PRIMARY KEY,
    hospital_id  uuid NOT NULL REFERENCES hospitals(id),
    uploaded_by  uuid NOT NULL REFERENCES users(id),
    patient_id   uuid REFERENCES patients(id),
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size > 0),
    sha256       text NOT NULL,
    blob_key     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL
);
CREATE INDEX attachments_hospital ON attachments (hospital_id, id);

-- Which tickets carry which files, kept by the referral store with the
-- ticket's attachments list, so a download can be authorised by one indexed
-- look-up instead of searching tickets' JSON.
CREATE TABLE referral_attachments (
    referral_id   uuid NOT NULL REFERENCES referrals(id),
    attachment_id uuid NOT NULL REFERENCES attachments(id),
    PRIMARY KEY (referral_id, attachment_id)
);
CREATE INDEX referral_attachments_attachment ON referral_attachments (attachment_id);
