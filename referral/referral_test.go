package referral

import (
	"errors"
	"strings"
	"testing"
	"time"

	"duikou/internal/apperr"
)

func TestACompleteTicketIsValid(t *testing.T) {
	r := complete()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestValidateEveryField: each bad value is reported under its JSON name.
func TestValidateEveryField(t *testing.T) {
	long := strings.Repeat("长", apperr.MaxText+1)
	longName := strings.Repeat("名", apperr.MaxName+1)
	cases := []struct {
		name   string
		change func(r *Referral)
		fields []string
	}{
		{"no direction", func(r *Referral) { r.Direction = "" }, []string{"direction"}},
		{"sideways", func(r *Referral) { r.Direction = "sideways" }, []string{"direction"}},
		{"no priority", func(r *Referral) { r.Priority = "" }, []string{"priority"}},
		{"unknown priority", func(r *Referral) { r.Priority = "asap" }, []string{"priority"}},
		{"green channel without category", func(r *Referral) { r.GreenCategory = "" }, []string{"green_category"}},
		{"unknown green category", func(r *Referral) { r.GreenCategory = "burns" }, []string{"green_category"}},
		{"category without green channel", func(r *Referral) { r.GreenChannel = false }, []string{"green_category"}},
		{"routine green channel", func(r *Referral) { r.Priority = Routine }, []string{"priority"}},
		{"green channel going down", func(r *Referral) { r.Direction = Down }, []string{"green_channel"}},
		{"no transfer risk", func(r *Referral) { r.TransferRisk = 0 }, []string{"transfer_risk"}},
		{"transfer risk IV", func(r *Referral) { r.TransferRisk = 4; r.Transport.Mode = BySelf }, []string{"transfer_risk"}},
		{"no patient", func(r *Referral) { r.PatientID = "" }, []string{"patient_id"}},
		{"patient not an id", func(r *Referral) { r.PatientID = "1 OR 1=1" }, []string{"patient_id"}},
		{"no referring hospital", func(r *Referral) { r.ReferringHospitalID = "" }, []string{"referring_hospital_id"}},
		{"no referring department", func(r *Referral) { r.ReferringDepartmentID = "" }, []string{"referring_department_id"}},
		{"no referring doctor", func(r *Referral) { r.ReferringDoctorID = "dr" }, []string{"referring_doctor_id"}},
		{"no receiving hospital", func(r *Referral) { r.ReceivingHospitalID = "" }, []string{"receiving_hospital_id"}},
		{"referring to itself", func(r *Referral) { r.ReceivingHospitalID = countyID }, []string{"receiving_hospital_id"}},
		{"no receiving department", func(r *Referral) { r.ReceivingDepartmentID = "" }, []string{"receiving_department_id"}},
		{"receiving doctor not an id", func(r *Referral) { r.ReceivingDoctorID = "王医生" }, []string{"receiving_doctor_id"}},
		{"no diagnosis", func(r *Referral) { r.Diagnoses = nil }, []string{"diagnoses"}},
		{"too many diagnoses", func(r *Referral) {
			r.Diagnoses = make([]Diagnosis, MaxDiagnoses+1)
		}, []string{"diagnoses"}},
		{"bad ICD-10 code", func(r *Referral) { r.Diagnoses[0].Code = "121.0" }, []string{"diagnoses[0].code"}},
		{"ICD-10 code with a long tail", func(r *Referral) { r.Diagnoses[0].Code = "I21.00000" }, []string{"diagnoses[0].code"}},
		{"missing code and text", func(r *Referral) { r.Diagnoses[0] = Diagnosis{} }, []string{"diagnoses[0].code", "diagnoses[0].text"}},
		{"diagnosis listed twice", func(r *Referral) {
			r.Diagnoses = append(r.Diagnoses, Diagnosis{Code: "i21.0", Text: "again"})
		}, []string{"diagnoses[1].code"}},
		{"over-long diagnosis text", func(r *Referral) { r.Diagnoses[0].Text = longName }, []string{"diagnoses[0].text"}},
		{"no reason", func(r *Referral) { r.Reason = " " }, []string{"reason"}},
		{"over-long reason", func(r *Referral) { r.Reason = long }, []string{"reason"}},
		{"control character in the summary", func(r *Referral) { r.ClinicalSummary = "胸痛\x00" }, []string{"clinical_summary"}},
		{"no clinical summary", func(r *Referral) { r.ClinicalSummary = "" }, []string{"clinical_summary"}},
		{"over-long treatment", func(r *Referral) { r.TreatmentGiven = long }, []string{"treatment_given"}},
		{"no transport", func(r *Referral) { r.Transport = Transport{} }, []string{"transport.mode", "transport.escort"}},
		{"unknown transport", func(r *Referral) { r.Transport = Transport{Mode: "helicopter", Escort: "friend"} }, []string{"transport.mode", "transport.escort"}},
		{"grade I by car with family", func(r *Referral) { r.Transport = Transport{Mode: BySelf, Escort: EscortFamily} }, []string{"transport.mode", "transport.escort"}},
		{"window without an end", func(r *Referral) { r.RequestedWindow.To = time.Time{} }, []string{"requested_window"}},
		{"window ending before it starts", func(r *Referral) { r.RequestedWindow.To = t0.Add(-time.Hour) }, []string{"requested_window.to"}},
		{"window of half a year", func(r *Referral) { r.RequestedWindow.To = t0.AddDate(0, 6, 0) }, []string{"requested_window.to"}},
		{"too many attachments", func(r *Referral) {
			r.Attachments = make([]AttachmentRef, MaxAttachments+1)
		}, []string{"attachments"}},
		{"attachment of nothing", func(r *Referral) { r.Attachments[0] = AttachmentRef{} },
			[]string{"attachments[0].id", "attachments[0].name", "attachments[0].content_type", "attachments[0].size"}},
		{"attachment with a path", func(r *Referral) { r.Attachments[0].Name = "../../etc/passwd" }, []string{"attachments[0].name"}},
		{"executable attachment", func(r *Referral) { r.Attachments[0].ContentType = "application/x-msdownload" }, []string{"attachments[0].content_type"}},
		{"huge attachment", func(r *Referral) { r.Attachments[0].Size = MaxAttachment + 1 }, []string{"attachments[0].size"}},
		{"no consent", func(r *Referral) { r.ConsentID = "" }, []string{"consent_id"}},
		{"based on a non-id", func(r *Referral) {
			r.Direction = Down
			r.GreenChannel, r.GreenCategory = false, ""
			r.BasedOnID = "abc"
		}, []string{"based_on_id"}},
		{"up-referral based on another", func(r *Referral) { r.BasedOnID = fileID }, []string{"based_on_id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := complete()
			c.change(&r)
			assertFields(t, r.Validate(), c.fields...)
		})
	}
}

func TestValidateReportsEverythingAtOnce(t *testing.T) {
	r := Referral{Direction: Up, Diagnoses: []Diagnosis{{Code: "x"}}}
	var inv apperr.Invalid
	if !errors.As(r.Validate(), &inv) || len(inv) < 12 {
		t.Fatalf("an empty ticket gave %d faults: %v", len(inv), inv)
	}
}

// TestDraftNeedsOnlyTheEssentials: a half-written draft may be saved, but
// what it holds must be well-formed.
func TestDraftNeedsOnlyTheEssentials(t *testing.T) {
	r := Referral{Direction: Up, PatientID: patientID, ReferringHospitalID: countyID}
	if err := r.ValidateDraft(); err != nil {
		t.Fatalf("minimal draft refused: %v", err)
	}
	r.Diagnoses = []Diagnosis{{Code: "I2", Text: "?"}}
	r.ReceivingHospitalID = "nope"
	assertFields(t, r.ValidateDraft(), "diagnoses[0].code", "receiving_hospital_id")
	assertFields(t, (&Referral{}).ValidateDraft(), "direction", "patient_id", "referring_hospital_id")
}

func TestICD10Shapes(t *testing.T) {
	for in, want := range map[string]string{
		"I21.0":       "I21.0",
		"i63":         "I63",
		" S06.5 ":     "S06.5",
		"O14.1":       "O14.1",
		"P07.3":       "P07.3",
		"C4A.1":       "C4A.1",
		"S06.5X0A":    "S06.5X0A",
		"I21.000x001": "I21.000x001",
		"i21.000X001": "I21.000x001",
	} {
		got, ok := NormalizeICD10(in)
		if !ok || got != want {
			t.Errorf("NormalizeICD10(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "I", "I2", "121", "I21.", "I21-0", "I21.0.1", "II21", "I21.00000", "I21x001", "心梗"} {
		if _, ok := NormalizeICD10(bad); ok {
			t.Errorf("NormalizeICD10(%q) accepted", bad)
		}
	}
}

func TestNumber(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	// 23:30 UTC on the 21st is already the 22nd in Shanghai: the number
	// shows the date in the zone it is given.
	day := time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC).In(shanghai)
	cases := []struct {
		seq  int64
		want string
	}{
		{123, "ZZ-20261122-000123"},
		{1, "ZZ-20261122-000001"},
		{999999, "ZZ-20261122-999999"},
		{1234567, "ZZ-20261122-1234567"},
	}
	for _, c := range cases {
		got := FormatNumber(day, c.seq)
		if got != c.want {
			t.Errorf("FormatNumber(%d) = %q, want %q", c.seq, got, c.want)
		}
		d, seq, err := ParseNumber(got)
		if err != nil || seq != c.seq || d.Format(time.DateOnly) != "2026-11-22" {
			t.Errorf("ParseNumber(%q) = %v, %d, %v", got, d, seq, err)
		}
	}
	for _, bad := range []string{"", "ZZ-20261122-123", "ZZ-20261122-0000123", "ZZ-20261122-000000",
		"ZZ-20261322-000123", "ZZ-20260230-000001", "zz-20261122-000123", "JC-20261122-000123",
		"ZZ-20261122-000123 ", "ZZ20261122000123"} {
		if _, _, err := ParseNumber(bad); err == nil {
			t.Errorf("ParseNumber(%q) accepted", bad)
		}
	}
	if slip, err := ExamSlipNumber("ZZ-20261122-000123"); err != nil || slip != "JC-20261122-000123" {
		t.Errorf("ExamSlipNumber = %q, %v", slip, err)
	}
}

func TestNewDraftBelongsToTheCaller(t *testing.T) {
	in := Input{Direction: Up, PatientID: patientID, Reason: " 需PCI "}
	r, err := New(refDoctor, in, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != Draft || r.Version != 1 || r.ReferringHospitalID != countyID || r.CreatedBy != refDoctor.UserID ||
		r.Reason != "需PCI" || !r.CreatedAt.Equal(now) {
		t.Errorf("new draft %+v", r)
	}
	if _, err := New(refAdmin, in, now); !errors.Is(err, apperr.ErrForbidden) {
		t.Errorf("an admin wrote a referral: %v", err)
	}
	if _, err := New(refDoctor, Input{}, now); err == nil {
		t.Errorf("a draft without direction or patient was accepted")
	}
}

func TestEditOnlyWhileWithTheReferrer(t *testing.T) {
	in := Input{Direction: Up, PatientID: patientID, Reason: "补充"}
	for _, c := range []struct {
		status Status
		by     string
		want   error
	}{
		{Draft, "referrer", nil},
		{InfoRequested, "referrer", nil},
		{Submitted, "referrer", apperr.ErrConflict},
		{Submitted, "receiver", apperr.ErrForbidden},
		{Draft, "receiver", apperr.ErrNotFound},
		{Submitted, "outsider", apperr.ErrNotFound},
	} {
		caller := refDoctor
		switch c.by {
		case "receiver":
			caller = rcvDesk
		case "outsider":
			caller = outsider
		}
		r := inState(c.status)
		got, err := Edit(r, caller, in, now)
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("edit %s by %s: %v, want %v", c.status, c.by, err, c.want)
			continue
		}
		if c.want == nil && (got.Reason != "补充" || got.Version != r.Version+1 || got.ReferringHospitalID != countyID) {
			t.Errorf("edit %s: %+v", c.status, got)
		}
	}
}
