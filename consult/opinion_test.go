package consult

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/referral"
)

func opinionInput() OpinionInput {
	d := draft()
	return OpinionInput{
		Findings: d.Findings, Impression: d.Impression, Recommendations: d.Recommendations,
		Diagnoses: d.Diagnoses, ReferralAdvised: d.ReferralAdvised, SuggestedDepartmentID: d.SuggestedDepartmentID,
	}
}

// TestSignedOpinionCannotBeEdited is the test: once signed, the
// opinion refuses every edit — a new draft, a new signature with other text —
// and only takes addenda.
func TestSignedOpinionCannotBeEdited(t *testing.T) {
	for _, st := range []Status{OpinionSigned, Acknowledged} {
		s := inState(Consult, st)
		changed := opinionInput()
		changed.Impression = "不稳定型心绞痛"

		got, ev, err := WriteOpinion(s, tgtAssigned, changed, now)
		if !errors.Is(err, apperr.ErrConflict) || !strings.Contains(err.Error(), "addendum") {
			t.Errorf("%s: editing the signed opinion: %v, want a conflict pointing to addenda", st, err)
		}
		if !ev.Empty() || !reflect.DeepEqual(got, s) {
			t.Errorf("%s: the refused edit changed the session", st)
		}
		got, ev, err = Decide(s, tgtAssigned, Sign, ActionInput{Opinion: &changed}, now)
		if !errors.Is(err, apperr.ErrConflict) || !ev.Empty() || !reflect.DeepEqual(got, s) {
			t.Errorf("%s: signing other text over the signed opinion: %v", st, err)
		}
		if !s.Opinion.Intact(s.ID) {
			t.Errorf("%s: the signed opinion does not match its digest", st)
		}
	}
	// Whatever changes the stored text afterwards is caught by the digest.
	s := inState(Consult, OpinionSigned)
	tampered := *s.Opinion
	tampered.Recommendations = "无需处理"
	if tampered.Intact(s.ID) {
		t.Errorf("a changed signed opinion still matches its digest")
	}
	if s.Opinion.Intact("0194f5c2-0000-7000-8000-000000000999") {
		t.Errorf("a signed opinion moved to another session still matches its digest")
	}
}

func TestSignTheDraftOrTheTextGiven(t *testing.T) {
	s := inState(Consult, Ended)
	got, ev, err := Decide(s, tgtAssigned, Sign, ActionInput{}, now)
	if err != nil {
		t.Fatal(err)
	}
	op := got.Opinion
	if !op.Signed() || op.SignedBy != assignedID || !op.SignedAt.Equal(now) || !got.SignedAt.Equal(now) ||
		op.Impression != draft().Impression || !op.Intact(s.ID) || ev.To != OpinionSigned {
		t.Errorf("signed draft: %+v", op)
	}
	if s.Opinion.Signed() {
		t.Errorf("signing wrote through to the caller's draft")
	}

	in := opinionInput()
	in.Findings = "  复查心电图无ST段改变  "
	in.Diagnoses = []referral.Diagnosis{{Code: " i20.8 ", Text: "稳定型心绞痛"}}
	got, _, err = Decide(s, tgtAssigned, Sign, ActionInput{Opinion: &in}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Opinion.Findings != "复查心电图无ST段改变" || got.Opinion.Diagnoses[0].Code != "I20.8" {
		t.Errorf("signed text not normalised: %+v", got.Opinion)
	}
	// The same text again is a retry.
	again, ev, err := Decide(got, tgtAssigned, Sign, ActionInput{Opinion: &in}, now.Add(time.Minute))
	if err != nil || !ev.Empty() || !reflect.DeepEqual(again, got) {
		t.Errorf("signing the same text again: %v %+v; want a no-op", err, ev)
	}
}

// TestDigestSurvivesStorage: a signature taken at a nanosecond instant in
// any zone still verifies once the time has been kept to the microsecond.
func TestDigestSurvivesStorage(t *testing.T) {
	at := now.Add(123456789 * time.Nanosecond).In(time.FixedZone("CST", 8*3600))
	got, _, err := Decide(inState(Consult, Ended), tgtAssigned, Sign, ActionInput{}, at)
	if err != nil {
		t.Fatal(err)
	}
	stored := *got.Opinion
	back, err := time.Parse(time.RFC3339Nano, stored.SignedAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
	if err != nil {
		t.Fatal(err)
	}
	stored.SignedAt = &back
	if !stored.Intact(got.ID) || !got.SignedAt.Equal(back) {
		t.Errorf("signed at %v, read back as %v: digest no longer matches", got.Opinion.SignedAt, back)
	}
	a, err := AddAddendum(got, tgtAssigned, "补充", at)
	if err != nil {
		t.Fatal(err)
	}
	a.SignedAt, _ = time.Parse(time.RFC3339Nano, a.SignedAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
	if !a.Intact() {
		t.Errorf("addendum read back no longer matches its digest")
	}
}

func TestSignNeedsACompleteOpinion(t *testing.T) {
	cases := []struct {
		name   string
		change func(in *OpinionInput)
		fields []string
	}{
		{"nothing written", func(in *OpinionInput) { *in = OpinionInput{} },
			[]string{"opinion.findings", "opinion.impression", "opinion.recommendations"}},
		{"referral advised without a department", func(in *OpinionInput) { in.SuggestedDepartmentID = "" }, []string{"opinion.suggested_department_id"}},
		{"department without a referral", func(in *OpinionInput) { in.ReferralAdvised = false }, []string{"opinion.suggested_department_id"}},
		{"department not an id", func(in *OpinionInput) { in.SuggestedDepartmentID = "心内科" }, []string{"opinion.suggested_department_id"}},
		{"bad diagnosis", func(in *OpinionInput) { in.Diagnoses = []referral.Diagnosis{{Code: "胸痛"}} },
			[]string{"opinion.diagnoses[0].code", "opinion.diagnoses[0].text"}},
		{"diagnosis twice", func(in *OpinionInput) {
			in.Diagnoses = []referral.Diagnosis{{Code: "I20.8", Text: "a"}, {Code: "i20.8", Text: "b"}}
		}, []string{"opinion.diagnoses[1].code"}},
		{"too many diagnoses", func(in *OpinionInput) { in.Diagnoses = make([]referral.Diagnosis, MaxOpinionDiagnoses+1) }, []string{"opinion.diagnoses"}},
		{"over-long findings", func(in *OpinionInput) { in.Findings = strings.Repeat("长", apperr.MaxText+1) }, []string{"opinion.findings"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := opinionInput()
			c.change(&in)
			s := inState(Consult, Ended)
			got, ev, err := Decide(s, tgtAssigned, Sign, ActionInput{Opinion: &in}, now)
			assertFields(t, err, c.fields...)
			if !ev.Empty() || !reflect.DeepEqual(got, s) {
				t.Errorf("refused signature changed the session")
			}
		})
	}
	s := inState(Consult, Ended)
	s.Opinion = nil
	_, _, err := Decide(s, tgtAssigned, Sign, ActionInput{}, now)
	assertFields(t, err, "opinion")
}

func TestWriteOpinion(t *testing.T) {
	in := opinionInput()
	in.Recommendations = ""
	in.ReferralAdvised, in.SuggestedDepartmentID = false, ""
	for _, st := range []Status{Accepted, Scheduled, Live, Ended} {
		s := inState(MDT, st)
		got, ev, err := WriteOpinion(s, tgtSecond, in, now)
		if err != nil {
			t.Fatalf("%s: a half-written draft: %v", st, err)
		}
		if got.Opinion.AuthorID != secondID || got.Opinion.Signed() || got.Version != s.Version+1 ||
			ev.Action != DraftOpinion || ev.From != st || ev.To != st {
			t.Errorf("%s: draft %+v event %+v", st, got.Opinion, ev)
		}
	}
	bad := in
	bad.SuggestedDepartmentID = "x"
	_, _, err := WriteOpinion(inState(Consult, Live), tgtAssigned, bad, now)
	assertFields(t, err, "opinion.suggested_department_id")

	cases := []struct {
		name   string
		kind   Kind
		status Status
		by     auth.Principal
		want   error
	}{
		{"an unassigned specialist", Consult, Live, tgtSpecialist, apperr.ErrForbidden},
		{"the target's desk", Consult, Live, tgtDesk, apperr.ErrForbidden},
		{"the requester", Consult, Live, reqDoctor, apperr.ErrForbidden},
		{"an unrelated hospital", Consult, Live, outsider, apperr.ErrNotFound},
		{"before acceptance", Consult, Requested, tgtAssigned, apperr.ErrForbidden}, // nobody is assigned yet
		{"a cancelled session", ExpertClinic, Cancelled, tgtAssigned, apperr.ErrConflict},
		{"a teaching round", TeachingRound, Ended, tgtAssigned, apperr.ErrConflict},
	}
	for _, c := range cases {
		_, _, err := WriteOpinion(inState(c.kind, c.status), c.by, in, now)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestAddenda(t *testing.T) {
	s := inState(MDT, OpinionSigned)
	a, err := AddAddendum(s, tgtSecond, "  补充：建议加做心脏超声  ", now)
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionID != s.ID || a.Text != "补充：建议加做心脏超声" || a.SignedBy != secondID || !a.SignedAt.Equal(now) || !a.Intact() {
		t.Errorf("addendum %+v", a)
	}
	tampered := a
	tampered.Text = "补充：无"
	if tampered.Intact() {
		t.Errorf("a changed addendum still matches its digest")
	}
	if _, err := AddAddendum(inState(Consult, Acknowledged), tgtAssigned, "复查结果已阅", now); err != nil {
		t.Errorf("addendum after acknowledgement: %v", err)
	}
	_, err = AddAddendum(s, tgtSecond, " ", now)
	assertFields(t, err, "text")

	cases := []struct {
		name   string
		kind   Kind
		status Status
		by     auth.Principal
		want   error
	}{
		{"a specialist not of the session", Consult, OpinionSigned, tgtSpecialist, apperr.ErrForbidden},
		{"an MDT specialist on a consult he was not on", Consult, OpinionSigned, tgtSecond, apperr.ErrForbidden},
		{"the requester", Consult, OpinionSigned, reqDoctor, apperr.ErrForbidden},
		{"an unrelated hospital", Consult, OpinionSigned, outsider, apperr.ErrNotFound},
		{"an unsigned opinion", Consult, Ended, tgtAssigned, apperr.ErrConflict},
		{"a teaching round", TeachingRound, Ended, tgtAssigned, apperr.ErrConflict},
	}
	for _, c := range cases {
		if _, err := AddAddendum(inState(c.kind, c.status), c.by, "补充意见", now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDraftReferral(t *testing.T) {
	s := inState(Consult, OpinionSigned)
	in, err := DraftReferral(*s.Opinion, s)
	if err != nil {
		t.Fatal(err)
	}
	if in.Direction != referral.Up || in.Priority != referral.Urgent || in.PatientID != patientID ||
		in.ReferringDepartmentID != countyDept || in.ReferringDoctorID != reqDoctorID ||
		in.ReceivingHospitalID != tertiaryID || in.ReceivingDepartmentID != cardioDept ||
		!reflect.DeepEqual(in.Diagnoses, s.Opinion.Diagnoses) ||
		!strings.Contains(in.Reason, s.Opinion.Impression) ||
		!strings.Contains(in.ClinicalSummary, s.ClinicalSummary) || !strings.Contains(in.ClinicalSummary, s.Opinion.Findings) {
		t.Errorf("drafted referral %+v", in)
	}
	// The DICOM series is over a referral's file limit and stays with the session.
	if len(in.Attachments) != 1 || in.Attachments[0].ID != fileID {
		t.Errorf("attachments %+v", in.Attachments)
	}
	// The draft is one referral.New accepts from the requester.
	r, err := referral.New(reqDoctor, in, now)
	if err != nil {
		t.Fatalf("the drafted referral is not a valid draft: %v", err)
	}
	if r.ReferringHospitalID != countyID {
		t.Errorf("draft for %s", r.ReferringHospitalID)
	}

	long := s
	long.ClinicalSummary = strings.Repeat("长", apperr.MaxText)
	in, err = DraftReferral(*s.Opinion, long)
	if err != nil || len([]rune(in.ClinicalSummary)) != apperr.MaxText {
		t.Errorf("a long summary is not clipped to the referral's limit: %v, %d", err, len([]rune(in.ClinicalSummary)))
	}

	notAdvised := *s.Opinion
	notAdvised.ReferralAdvised = false
	for name, c := range map[string]struct {
		op Opinion
		s  Session
	}{
		"an unsigned opinion": {*draft(), inState(Consult, Ended)},
		"no referral advised": {notAdvised, s},
	} {
		if _, err := DraftReferral(c.op, c.s); !errors.Is(err, apperr.ErrConflict) {
			t.Errorf("%s: %v, want conflict", name, err)
		}
	}
}
