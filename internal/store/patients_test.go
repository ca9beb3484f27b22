package store_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// patTestUser inserts a user (patients and consents name who wrote them).
func patTestUser(t *testing.T, db sqldb.DB, hospitalID, username string) string {
	t.Helper()
	id := dirTestID()
	now := sqldb.Now()
	if _, err := db.Exec(context.Background(), `INSERT INTO users (id, username, display_name, hospital_id, password_hash,
		created_at, updated_at) VALUES ($1, $2, $2, $3, 'x', $4, $4)`, id, username, hospitalID, now); err != nil {
		t.Fatal(err)
	}
	return id
}

func patTestPatient(t *testing.T, st *store.Patients, home, user, name string, hash []byte) patient.Patient {
	t.Helper()
	now := sqldb.Now()
	p := patient.Patient{ID: dirTestID(), Name: name, Sex: patient.Female, BirthDate: "1968-05-21",
		Phone: "13900000000", Address: "苍溪县陵江镇", HomeHospitalID: home, CreatedBy: user,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	if hash != nil {
		p.NationalIDCipher, p.NationalIDHash, p.NationalIDMasked = append([]byte{1}, hash...), hash, "5108**********1230"
	}
	if err := st.CreatePatient(context.Background(), p); err != nil {
		t.Fatalf("create patient %s: %v", name, err)
	}
	return p
}

func patTestPatientID(p patient.Patient) string { return p.ID }

func TestPatientsStoreRegister(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		dirs := store.NewDirectory(db)
		st := store.NewPatients(db)
		h1 := dirTestHospital(t, dirs, 1, directory.Secondary, "四川省", "苍溪县")
		h2 := dirTestHospital(t, dirs, 2, directory.Tertiary, "四川省", "")
		user := patTestUser(t, db, h1.ID, "doc")

		wang := patTestPatient(t, st, h1.ID, user, "王秀英", []byte("hash-wang"))
		wangLi := patTestPatient(t, st, h1.ID, user, "王丽", nil)
		pct := patTestPatient(t, st, h1.ID, user, "100%_王", nil) // wildcards in a name are literal
		li := patTestPatient(t, st, h2.ID, user, "李明", []byte("hash-li"))
		nobody := patTestPatient(t, st, h2.ID, user, "无证者", nil) // two patients without an ID do not clash

		got, err := st.Patient(ctx, wang.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != wang.Name || got.BirthDate != "1968-05-21" || got.Sex != patient.Female || got.CreatedBy != user ||
			!bytes.Equal(got.NationalIDCipher, wang.NationalIDCipher) || !bytes.Equal(got.NationalIDHash, wang.NationalIDHash) ||
			got.NationalIDMasked != wang.NationalIDMasked || !got.CreatedAt.Equal(wang.CreatedAt) || got.Version != 1 {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, wang)
		}
		got, err = st.Patient(ctx, nobody.ID)
		if err != nil || got.NationalIDCipher != nil || got.NationalIDHash != nil || got.NationalIDMasked != "" {
			t.Errorf("patient without ID: %+v, %v", got, err)
		}
		if _, err := st.Patient(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		if got, err := st.PatientByNationalIDHash(ctx, []byte("hash-li")); err != nil || got.ID != li.ID {
			t.Errorf("by hash: %v, %v", got.ID, err)
		}
		if _, err := st.PatientByNationalIDHash(ctx, []byte("hash-none")); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown hash: %v", err)
		}

		dup := wang
		dup.ID = dirTestID()
		if err := st.CreatePatient(ctx, dup); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("same national ID again: %v, want ErrConflict", err)
		}

		for _, tc := range []struct {
			name string
			f    patient.Filter
			want []patient.Patient
		}{
			{"all", patient.Filter{}, []patient.Patient{wang, wangLi, pct, li, nobody}},
			{"name prefix", patient.Filter{NamePrefix: "王"}, []patient.Patient{wang, wangLi}},
			{"longer prefix", patient.Filter{NamePrefix: "王秀"}, []patient.Patient{wang}},
			{"wildcards are literal", patient.Filter{NamePrefix: "100%_"}, []patient.Patient{pct}},
			{"a percent sign alone matches only itself", patient.Filter{NamePrefix: "%"}, nil},
			{"home hospital", patient.Filter{HomeHospitalID: h2.ID}, []patient.Patient{li, nobody}},
			{"scoped", patient.Filter{Scoped: true, Within: []string{h2.ID}}, []patient.Patient{li, nobody}},
			{"scoped, home outside", patient.Filter{Scoped: true, Within: []string{h2.ID}, HomeHospitalID: h1.ID}, nil},
			{"scoped to nothing", patient.Filter{Scoped: true}, nil},
			{"page", patient.Filter{After: wangLi.ID, Limit: 2}, []patient.Patient{pct, li}},
		} {
			got, err := st.Patients(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if g, w := dirTestIDs(got, patTestPatientID), dirTestIDs(tc.want, patTestPatientID); !slices.Equal(g, w) {
				t.Errorf("%s: got %v, want %v", tc.name, g, w)
			}
		}

		edit := wangLi
		edit.Name, edit.HomeHospitalID, edit.UpdatedAt = "王丽华", h2.ID, sqldb.Now()
		edit.NationalIDCipher, edit.NationalIDHash, edit.NationalIDMasked = []byte{1, 2}, []byte("hash-wangli"), "1101**********1234"
		upd, err := st.UpdatePatient(ctx, edit)
		if err != nil || upd.Version != 2 || upd.Name != "王丽华" || upd.HomeHospitalID != h2.ID || !bytes.Equal(upd.NationalIDHash, []byte("hash-wangli")) {
			t.Errorf("update: %+v, %v", upd, err)
		}
		if _, err := st.UpdatePatient(ctx, edit); !errors.Is(err, apperr.ErrStale) {
			t.Errorf("stale update: %v", err)
		}
		missing := edit
		missing.ID = dirTestID()
		if _, err := st.UpdatePatient(ctx, missing); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("update unknown: %v", err)
		}
		clash := upd
		clash.NationalIDHash = []byte("hash-li")
		if _, err := st.UpdatePatient(ctx, clash); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("update to a taken national ID: %v", err)
		}
		cleared := upd
		cleared.NationalIDCipher, cleared.NationalIDHash, cleared.NationalIDMasked = nil, nil, ""
		if got, err := st.UpdatePatient(ctx, cleared); err != nil || got.NationalIDHash != nil {
			t.Errorf("remove the national ID: %+v, %v", got, err)
		}
	})
}

func TestPatientsStoreConsents(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		dirs := store.NewDirectory(db)
		st := store.NewPatients(db)
		h1 := dirTestHospital(t, dirs, 1, directory.Secondary, "四川省", "苍溪县")
		h2 := dirTestHospital(t, dirs, 2, directory.Tertiary, "四川省", "")
		user := patTestUser(t, db, h1.ID, "doc")
		p1 := patTestPatient(t, st, h1.ID, user, "王秀英", nil)
		p2 := patTestPatient(t, st, h1.ID, user, "李明", nil)

		granted := sqldb.Now().Add(-time.Hour)
		mk := func(p patient.Patient, purpose patient.Purpose, shared *string) patient.Consent {
			c := patient.Consent{ID: dirTestID(), PatientID: p.ID, ConsenterKind: patient.ByGuardian, ConsenterName: "王建国",
				Relationship: "儿子", Purpose: purpose, SharedWithHospitalID: shared, Note: "口头同意，已签字",
				GrantedAt: granted, RecordedBy: user, RecordedAt: sqldb.Now(), Active: true}
			if err := st.CreateConsent(ctx, c); err != nil {
				t.Fatalf("create consent: %v", err)
			}
			return c
		}
		referral := mk(p1, patient.ForReferral, nil)
		sharing := mk(p1, patient.ForDataSharing, &h2.ID)
		remote := mk(p1, patient.ForRemoteConsultation, nil)
		other := mk(p2, patient.ForReferral, nil)

		got, err := st.Consent(ctx, sharing.ID)
		if err != nil || got.SharedWithHospitalID == nil || *got.SharedWithHospitalID != h2.ID || !got.GrantedAt.Equal(granted) ||
			got.WithdrawnAt != nil || !got.Active || got.Relationship != "儿子" || got.ConsenterKind != patient.ByGuardian {
			t.Errorf("round trip: %+v, %v", got, err)
		}
		if got, _ := st.Consent(ctx, referral.ID); got.SharedWithHospitalID != nil {
			t.Errorf("consent without a hospital: %+v", got)
		}
		if _, err := st.Consent(ctx, dirTestID()); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("unknown consent: %v", err)
		}

		consentID := func(c patient.Consent) string { return c.ID }
		page1, _ := st.Consents(ctx, patient.ConsentFilter{PatientID: p1.ID, Limit: 2})
		page2, _ := st.Consents(ctx, patient.ConsentFilter{PatientID: p1.ID, After: page1[len(page1)-1].ID, Limit: 2})
		if g, w := dirTestIDs(append(page1, page2...), consentID), []string{referral.ID, sharing.ID, remote.ID}; !slices.Equal(g, w) {
			t.Errorf("consents of p1 in pages: got %v, want %v", g, w)
		}

		at := sqldb.Now()
		w, err := st.WithdrawConsent(ctx, referral.ID, at, user, "家属改变主意")
		if err != nil || w.WithdrawnAt == nil || !w.WithdrawnAt.Equal(at) || w.WithdrawnBy == nil || *w.WithdrawnBy != user ||
			w.WithdrawReason != "家属改变主意" || w.Active {
			t.Errorf("withdraw: %+v, %v", w, err)
		}
		if _, err := st.WithdrawConsent(ctx, referral.ID, at, user, "again"); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("withdraw twice: %v, want ErrConflict", err)
		}
		if _, err := st.WithdrawConsent(ctx, dirTestID(), at, user, "x"); !errors.Is(err, apperr.ErrNotFound) {
			t.Errorf("withdraw unknown: %v", err)
		}

		active, err := st.ActiveConsents(ctx, p1.ID, patient.ForReferral)
		if err != nil || len(active) != 0 {
			t.Errorf("withdrawn referral consent still active: %v, %v", active, err)
		}
		active, _ = st.ActiveConsents(ctx, p1.ID, patient.ForDataSharing)
		if g := dirTestIDs(active, consentID); !slices.Equal(g, []string{sharing.ID}) {
			t.Errorf("active sharing consents: %v", g)
		}
		active, _ = st.ActiveConsents(ctx, p2.ID, patient.ForReferral)
		if g := dirTestIDs(active, consentID); !slices.Equal(g, []string{other.ID}) {
			t.Errorf("active referral consents of p2: %v", g)
		}
	})
}
