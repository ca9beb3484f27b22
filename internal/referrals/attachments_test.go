package referrals_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"duikou/attachment"
	"duikou/internal/apperr"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// upload stores a file's metadata as if hospital's user had uploaded it.
func (w *refWorld) upload(t *testing.T, hospital, user, patientID, name, ctype string, size int64) attachment.Attachment {
	t.Helper()
	id := refID()
	a := attachment.Attachment{ID: id, HospitalID: hospital, UploadedBy: user, PatientID: patientID, Name: name,
		ContentType: ctype, Size: size, SHA256: "00", BlobKey: id, CreatedAt: w.now}
	if err := store.NewAttachments(w.db).Create(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

// A ticket names its files by id; their name, type and size are the ones
// stored at upload, whatever the client wrote.
func TestReferralAttachmentsTakeTheirDetailsFromTheUpload(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		ecg := w.upload(t, w.county, w.doctor.UserID, w.patient, "心电图.pdf", attachment.PDF, 68_400)
		ct := w.upload(t, w.county, w.doctor.UserID, "", "头颅CT.dcm", attachment.DICOM, 1_052_902)
		in := w.input(w.patient)
		in.Attachments = []referral.AttachmentRef{
			{ID: ecg.ID, Name: "harmless.png", ContentType: "image/png", Size: 1},
			{ID: " " + ct.ID + " "}, // the id alone is enough
		}
		r := w.draft(t, in)
		want := []referral.AttachmentRef{
			{ID: ecg.ID, Name: "心电图.pdf", ContentType: attachment.PDF, Size: 68_400},
			{ID: ct.ID, Name: "头颅CT.dcm", ContentType: attachment.DICOM, Size: 1_052_902},
		}
		if !slices.Equal(r.Attachments, want) {
			t.Errorf("attachments %+v, want %+v", r.Attachments, want)
		}
		stored, err := w.st.Get(context.Background(), r.ID)
		if err != nil || !slices.Equal(stored.Attachments, want) {
			t.Errorf("stored attachments %+v (%v)", stored.Attachments, err)
		}
		ok, err := w.st.CarriesAttachment(context.Background(), ct.ID, w.county)
		if err != nil || !ok {
			t.Errorf("the ticket does not carry the CT for its sender: %t %v", ok, err)
		}
	})
}

// A file that was never uploaded, one of another hospital, one listed twice
// and one about another patient are each refused under the entry's id,
// together with the ticket's other faults; what the client wrote about a
// refused entry is not reported on top.
func TestReferralAttachmentsMustBeTheCallersOwnUploads(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		w := newRefWorld(t, db, nil)
		own := w.upload(t, w.county, w.doctor.UserID, "", "化验单.png", attachment.PNG, 2048)
		foreign := w.upload(t, w.otherCounty, w.outside.UserID, "", "外院.pdf", attachment.PDF, 4096)
		otherPatient := w.upload(t, w.county, w.doctor.UserID, w.addPatient(t, true), "别人的.jpg", attachment.JPEG, 999)

		in := w.input(w.patient)
		in.Direction = "sideways"
		in.Attachments = []referral.AttachmentRef{
			{ID: own.ID},
			{ID: refID(), Name: "../../etc/passwd", ContentType: "text/html"},
			{ID: foreign.ID},
			{ID: own.ID},
			{ID: otherPatient.ID},
		}
		_, err := w.svc.Create(context.Background(), w.doctor, in)
		var v apperr.Invalid
		if !errors.As(err, &v) {
			t.Fatalf("got %v, want field errors", err)
		}
		var fields []string
		for _, f := range v {
			fields = append(fields, f.Field)
		}
		slices.Sort(fields)
		want := []string{"attachments[1].id", "attachments[2].id", "attachments[3].id", "attachments[4].id", "direction"}
		if !slices.Equal(fields, want) {
			t.Errorf("faults %v, want %v", fields, want)
		}

		// The other hospital cannot pass on the county's file either.
		outIn := w.input(w.patient)
		outIn.Attachments = []referral.AttachmentRef{{ID: own.ID}}
		_, err = w.svc.Create(context.Background(), w.outside, outIn)
		if !errors.As(err, &v) || !slices.ContainsFunc(v, func(f apperr.FieldError) bool { return f.Field == "attachments[0].id" }) {
			t.Errorf("another hospital's ticket naming the county's file: %v", err)
		}
	})
}

// An edit resolves its files as a new ticket does: details from the upload,
// another hospital's file refused under its id, and the ticket's links to its
// files follow the edit.
func TestReferralAttachmentsOfAnEdit(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		w := newRefWorld(t, db, nil)
		ecg := w.upload(t, w.county, w.doctor.UserID, w.patient, "心电图.pdf", attachment.PDF, 68_400)
		foreign := w.upload(t, w.otherCounty, w.outside.UserID, "", "外院.pdf", attachment.PDF, 4096)
		in := w.input(w.patient)
		d := w.draft(t, in)

		in.Attachments = []referral.AttachmentRef{{ID: ecg.ID, Name: "x.png", ContentType: "image/png", Size: 1}, {ID: foreign.ID}}
		_, err := w.svc.Edit(ctx, w.doctor, d.ID, d.Version, in)
		wantFieldError(t, err, "attachments[1].id")

		in.Attachments = in.Attachments[:1]
		edited, err := w.svc.Edit(ctx, w.doctor, d.ID, d.Version, in)
		if err != nil {
			t.Fatal(err)
		}
		want := []referral.AttachmentRef{{ID: ecg.ID, Name: "心电图.pdf", ContentType: attachment.PDF, Size: 68_400}}
		if !slices.Equal(edited.Attachments, want) {
			t.Errorf("attachments %+v, want %+v", edited.Attachments, want)
		}
		if ok, err := w.st.CarriesAttachment(ctx, ecg.ID, w.county); err != nil || !ok {
			t.Errorf("the edited ticket does not carry its file: %t %v", ok, err)
		}
	})
}
