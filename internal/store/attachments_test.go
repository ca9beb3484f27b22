package store_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
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

		was := r
		r.Status, r.Version, r.SubmittedAt, r.QueuedAt = referral.Submitted, 2, &now, &now
		r.Attachments = []referral.AttachmentRef{ref(ecg), ref(labs)}
		if err := refs.Update(ctx, r, was); err != nil {
			t.Fatal(err)
		}
		if !carries(ecg, tert) || !carries(labs, tert) || carries(labs, other) {
			t.Errorf("submitted: the receiver reaches ECG %t, labs %t; other %t", carries(ecg, tert), carries(labs, tert), carries(labs, other))
		}

		was = r
		r.Version = 3
		r.Attachments = []referral.AttachmentRef{ref(labs)}
		if err := refs.Update(ctx, r, was); err != nil {
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

// stmtLog passes statements to a database and keeps their text.
type stmtLog struct {
	sqldb.DB
	mu    sync.Mutex
	stmts []string
}

func (l *stmtLog) log(q string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stmts = append(l.stmts, q)
}

func (l *stmtLog) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	l.log(q)
	return l.DB.Exec(ctx, q, args...)
}

func (l *stmtLog) Query(ctx context.Context, q string, args ...any) (sqldb.Rows, error) {
	l.log(q)
	return l.DB.Query(ctx, q, args...)
}

func (l *stmtLog) QueryRow(ctx context.Context, q string, args ...any) sqldb.Row {
	l.log(q)
	return l.DB.QueryRow(ctx, q, args...)
}

// touched reports whether a statement since the last call named table.
func (l *stmtLog) touched(table string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	hit := slices.ContainsFunc(l.stmts, func(q string) bool { return strings.Contains(q, table) })
	l.stmts = nil
	return hit
}

// An update rewrites a ticket's rows in referral_attachments when the files
// it carries change, and leaves them alone when they do not (a submission,
// a claim, the same files listed in another order or described anew).
func TestReferralStoreUpdateLinksAttachmentsOnlyWhenTheyChange(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		county := dirTestHospital(t, dir, 1, directory.Secondary, "四川省", "苍溪县")
		tert := dirTestHospital(t, dir, 2, directory.Tertiary, "四川省", "")
		user := patTestUser(t, db, county.ID, "att.doctor")
		files := store.NewAttachments(db)
		ecg, labs := attTestFile(county.ID, user, ""), attTestFile(county.ID, user, "")
		for _, a := range []attachment.Attachment{ecg, labs} {
			if err := files.Create(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		stmts := &stmtLog{DB: db}
		refs := store.NewReferrals(stmts)
		ref := func(a attachment.Attachment) referral.AttachmentRef {
			return referral.AttachmentRef{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size}
		}

		now := sqldb.Now()
		r := refTestTicket(county.ID, tert.ID, now)
		r.Attachments = []referral.AttachmentRef{ref(ecg)}
		if err := refs.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		renamed := ref(ecg)
		renamed.Name = "心电图（复查）.pdf"
		steps := []struct {
			name        string
			attachments []referral.AttachmentRef
			rewrites    bool
			carried     []attachment.Attachment
		}{
			{"claimed, same files", []referral.AttachmentRef{ref(ecg)}, false, []attachment.Attachment{ecg}},
			{"a file described anew", []referral.AttachmentRef{renamed}, false, []attachment.Attachment{ecg}},
			{"labs added", []referral.AttachmentRef{ref(ecg), ref(labs)}, true, []attachment.Attachment{ecg, labs}},
			{"same files in another order", []referral.AttachmentRef{ref(labs), ref(ecg)}, false, []attachment.Attachment{ecg, labs}},
			{"ECG taken off", []referral.AttachmentRef{ref(labs)}, true, []attachment.Attachment{labs}},
			{"ECG instead of labs", []referral.AttachmentRef{ref(ecg)}, true, []attachment.Attachment{ecg}},
			{"all taken off", []referral.AttachmentRef{}, true, nil},
			{"still none", nil, false, nil},
		}
		for _, st := range steps {
			stmts.touched("")
			was := r
			r.Version++
			r.Attachments = st.attachments
			if err := refs.Update(ctx, r, was); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got := stmts.touched("referral_attachments"); got != st.rewrites {
				t.Errorf("%s: referral_attachments touched %t, want %t", st.name, got, st.rewrites)
			}
			for _, a := range []attachment.Attachment{ecg, labs} {
				ok, err := refs.CarriesAttachment(ctx, a.ID, tert.ID)
				if err != nil {
					t.Fatal(err)
				}
				if want := slices.Contains(st.carried, a); ok != want {
					t.Errorf("%s: carries %s %t, want %t", st.name, a.ID, ok, want)
				}
			}
			if stored, err := refs.Get(ctx, r.ID); err != nil || stored.Version != r.Version {
				t.Fatalf("%s: stored version %d, %v; want %d", st.name, stored.Version, err, r.Version)
			}
		}
	})
}
