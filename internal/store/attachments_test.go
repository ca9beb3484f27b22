package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

func attTestFile(hospital, user, patientID string) attachment.Attachment {
	id := dirTestID()
	return attachment.Attachment{ID: id, HospitalID: hospital, UploadedBy: user, PatientID: patientID,
		Name: "心电图.pdf", ContentType: attachment.PDF, Size: 684,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", BlobKey: id, CreatedAt: sqldb.Now()}
}

func TestAttachmentStoreCreateGet(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		h := dirTestHospital(t, store.NewDirectory(db), 1, directory.Secondary, "四川省", "苍溪县")
		user := patTestUser(t, db, h.ID, "att.doctor")
		pt := patTestPatient(t, store.NewPatients(db), h.ID, user, "王秀英", nil)
		st := store.NewAttachments(db)

		withPatient, plain := attTestFile(h.ID, user, pt.ID), attTestFile(h.ID, user, "")
		for _, a := range []attachment.Attachment{withPatient, plain} {
			if err := st.Create(ctx, a); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, a) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, a)
			}
		}
		for _, id := range []string{dirTestID(), "not-an-id", ""} {
			if _, err := st.Get(ctx, id); !errors.Is(err, apperr.ErrNotFound) {
				t.Errorf("get %q: %v, want not found", id, err)
			}
		}
		again := attTestFile(h.ID, user, "")
		again.BlobKey = plain.BlobKey
		if err := st.Create(ctx, again); !errors.Is(err, sqldb.ErrUniqueViolation) {
			t.Errorf("a second row for one blob: %v, want a unique violation", err)
		}
		if home, err := st.PatientHome(ctx, pt.ID); err != nil || home != h.ID {
			t.Errorf("patient home: %q %v", home, err)
		}
	})
}

// The referral store keeps which tickets carry which files, and answers
// whether a hospital is a party to a ticket carrying one: the sender always,
// the receiver once the ticket has left the draft stage, nobody else.
func TestReferralStoreTracksTheAttachmentsATicketCarries(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		county := dirTestHospital(t, dir, 1, directory.Secondary, "四川省", "苍溪县")
		tert := dirTestHospital(t, dir, 2, directory.Tertiary, "四川省", "")
		other := dirTestHospital(t, dir, 3, directory.Secondary, "贵州省", "")
		user := patTestUser(t, db, county.ID, "att.doctor")
		files, refs := store.NewAttachments(db), store.NewReferrals(db)
		ecg, labs := attTestFile(county.ID, user, ""), attTestFile(county.ID, user, "")
		for _, a := range []attachment.Attachment{ecg, labs} {
			if err := files.Create(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		ref := func(a attachment.Attachment) referral.AttachmentRef {
			return referral.AttachmentRef{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size}
		}
		carries := func(a attachment.Attachment, h directory.Hospital) bool {
			t.Helper()
			ok, err := refs.CarriesAttachment(ctx, a.ID, h.ID)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}

		now := sqldb.Now()
		r := refTestTicket(county.ID, tert.ID, now)
		r.Status, r.SubmittedAt, r.QueuedAt, r.Version = referral.Draft, nil, nil, 1
		// An id that names no stored file (a ticket from before uploads) is
		// carried in the JSON but linked to nothing.
		r.Attachments = []referral.AttachmentRef{ref(ecg), {ID: dirTestID(), Name: "旧.pdf", ContentType: attachment.PDF, Size: 1}}
		if err := refs.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if !carries(ecg, county) || carries(ecg, tert) || carries(ecg, other) || carries(labs, county) {
			t.Errorf("draft: county %t, tertiary %t, other %t, labs %t; want only the county to reach the ECG",
				carries(ecg, county), carries(ecg, tert), carries(ecg, other), carries(labs, county))
		}

		r.Status, r.Version, r.SubmittedAt, r.QueuedAt = referral.Submitted, 2, &now, &now
		r.Attachments = []referral.AttachmentRef{ref(ecg), ref(labs)}
		if err := refs.Update(ctx, r, 1); err != nil {
			t.Fatal(err)
		}
		if !carries(ecg, tert) || !carries(labs, tert) || carries(labs, other) {
			t.Errorf("submitted: the receiver reaches ECG %t, labs %t; other %t", carries(ecg, tert), carries(labs, tert), carries(labs, other))
		}

		r.Version = 3
		r.Attachments = []referral.AttachmentRef{ref(labs)}
		if err := refs.Update(ctx, r, 2); err != nil {
			t.Fatal(err)
		}
		if carries(ecg, county) || carries(ecg, tert) || !carries(labs, tert) {
			t.Errorf("after the ECG was taken off the ticket: county %t, tertiary %t; labs %t", carries(ecg, county), carries(ecg, tert), carries(labs, tert))
		}

		got, err := refs.AttachmentsByID(ctx, []string{ecg.ID, labs.ID, dirTestID(), "nonsense"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[ecg.ID].Name != ecg.Name || got[labs.ID].HospitalID != county.ID {
			t.Errorf("attachments by id: %+v", got)
		}
	})
}
