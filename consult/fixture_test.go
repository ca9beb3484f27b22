package consult

import (
	"time"

	"duikou/internal/auth"
	"duikou/referral"
)

// The world of these tests: a county hospital asks its tertiary partner; a
// second county hospital is invited to teaching rounds; a fourth hospital,
// paired with all of them, is no party to any session.
const (
	countyID   = "0194f5c2-0000-7000-8000-00000000c001"
	tertiaryID = "0194f5c2-0000-7000-8000-00000000a001"
	guestID    = "0194f5c2-0000-7000-8000-00000000c002" // invited to teaching rounds
	outsiderID = "0194f5c2-0000-7000-8000-00000000e001"

	patientID  = "0194f5c2-0000-7000-8000-0000000000b1"
	countyDept = "0194f5c2-0000-7000-8000-0000000000d1"
	cardioDept = "0194f5c2-0000-7000-8000-0000000000d3"
	neuroDept  = "0194f5c2-0000-7000-8000-0000000000d4"
	fileID     = "0194f5c2-0000-7000-8000-0000000000f1"
	dicomID    = "0194f5c2-0000-7000-8000-0000000000f2"
	sessionID  = "0194f5c2-0000-7000-8000-000000000501"
	slotID     = "0194f5c2-0000-7000-8000-000000000601"

	reqDoctorID  = "0194f5c2-0000-7000-8000-000000000101"
	assignedID   = "0194f5c2-0000-7000-8000-000000000201" // the assigned cardiologist
	secondID     = "0194f5c2-0000-7000-8000-000000000202" // the assigned neurologist of an MDT
	unassignedID = "0194f5c2-0000-7000-8000-000000000203"
)

// t0 is when every test session was requested; now is a little later.
var (
	t0  = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) // a Monday
	now = t0.Add(20 * time.Minute)
)

func principal(user, hospital string, roles ...auth.Role) auth.Principal {
	return auth.Principal{
		UserID: user, HospitalID: hospital, Roles: roles,
		Reach: map[string]bool{countyID: true, tertiaryID: true, guestID: true, outsiderID: true},
	}
}

var (
	reqDoctor     = principal(reqDoctorID, countyID, auth.CountyDoctor)
	reqDispatched = principal("0194f5c2-0000-7000-8000-000000000102", countyID, auth.DispatchedDoctor)
	reqDesk       = principal("0194f5c2-0000-7000-8000-000000000103", countyID, auth.ReferralDesk)
	reqAdmin      = principal("0194f5c2-0000-7000-8000-000000000104", countyID, auth.Admin, auth.ProgramOffice)
	tgtAssigned   = principal(assignedID, tertiaryID, auth.Specialist)
	tgtSecond     = principal(secondID, tertiaryID, auth.Specialist)
	tgtSpecialist = principal(unassignedID, tertiaryID, auth.Specialist)
	tgtDesk       = principal("0194f5c2-0000-7000-8000-000000000204", tertiaryID, auth.ReferralDesk)
	tgtAuditor    = principal("0194f5c2-0000-7000-8000-000000000205", tertiaryID, auth.Auditor)
	guestDoctor   = principal("0194f5c2-0000-7000-8000-000000000301", guestID, auth.CountyDoctor, auth.Specialist)
	outsider      = principal("0194f5c2-0000-7000-8000-000000000401", outsiderID, auth.Specialist, auth.CountyDoctor)
)

var (
	theSchedule = Period{Start: now.Add(2 * time.Hour), End: now.Add(3 * time.Hour)}
	bothConsent = Consent{RemoteConsultation: true, DataSharing: true}
)

func ptr(t time.Time) *time.Time { return &t }

// assignments is what acceptance records for kind k.
func assignments(k Kind) []Assignment {
	if k == MDT {
		return []Assignment{{assignedID, cardioDept}, {secondID, neuroDept}}
	}
	return []Assignment{{assignedID, cardioDept}}
}

// requested is a valid new request of kind k.
func requested(k Kind) Session {
	s := Session{
		ID: sessionID, Kind: k, Urgency: Urgent,
		RequesterID: reqDoctorID, RequestingHospitalID: countyID, RequestingDepartmentID: countyDept,
		TargetHospitalID:    tertiaryID,
		TargetDepartmentIDs: []string{cardioDept},
		Question:            "胸痛反复发作，冠脉CTA示前降支中段狭窄70%，是否需行PCI？",
		ClinicalSummary:     "男，62岁，高血压10年，活动后胸闷3月",
		Attachments: []Attachment{
			{ID: fileID, Kind: PDF, Name: "ecg.pdf", ContentType: "application/pdf", Size: 120_000},
			{ID: dicomID, Kind: DICOM, Name: "cta-001.dcm", ContentType: "application/dicom", Size: 200 << 20,
				Dicom: &DicomTags{Modality: "CT", StudyDate: "20261120", BodyPart: "CHEST", StudyInstanceUID: "1.2.840.113619.2.55.3"}},
		},
		PatientID: patientID,
		Status:    Requested, Version: 1, CreatedAt: t0, UpdatedAt: t0,
	}
	switch k {
	case MDT:
		s.TargetDepartmentIDs = []string{cardioDept, neuroDept}
	case TeachingRound:
		s.Urgency, s.PatientID, s.ClinicalSummary = Routine, "", ""
		s.Question = "急性胸痛的鉴别诊断（教学查房）"
		s.AttendeeHospitalIDs = []string{guestID}
	case ExpertClinic:
		s.Urgency, s.SlotID = Routine, slotID
	}
	return s
}

// draft is an opinion draft written by the assigned specialist.
func draft() *Opinion {
	return &Opinion{
		Findings:        "CTA示LAD中段狭窄约70%，心电图无动态改变",
		Impression:      "稳定型心绞痛，冠心病单支病变",
		Recommendations: "强化药物治疗，建议上转行冠脉造影评估",
		Diagnoses:       []referral.Diagnosis{{Code: "I20.8", Text: "稳定型心绞痛"}},
		ReferralAdvised: true, SuggestedDepartmentID: cardioDept,
		AuthorID: assignedID, UpdatedAt: t0.Add(5 * time.Minute),
	}
}

// inState is a session of kind k as it stands in status st, with what the
// steps before recorded: specialists assigned, the schedule, a draft opinion
// once accepted and the signed one once signed.
func inState(k Kind, st Status) Session {
	s := requested(k)
	s.Status = st
	after := func(states ...Status) bool {
		for _, x := range states {
			if x == st {
				return true
			}
		}
		return false
	}
	if after(Accepted, Scheduled, Live, Ended, OpinionSigned, Acknowledged) || (k == ExpertClinic && st == Cancelled) {
		s.Specialists, s.AcceptedBy, s.AcceptedAt = assignments(k), unassignedID, ptr(t0.Add(time.Minute))
		if k.HasPatient() {
			s.Opinion = draft()
		}
	}
	if after(Scheduled, Live, Ended, OpinionSigned, Acknowledged) {
		sc := theSchedule
		s.Schedule, s.ScheduledAt = &sc, ptr(t0.Add(2*time.Minute))
	}
	if after(OpinionSigned, Acknowledged) && k != TeachingRound {
		op, err := signOpinion(s, tgtAssigned, nil, t0.Add(10*time.Minute))
		if err != nil {
			panic(err)
		}
		s.Opinion, s.SignedAt = &op, op.SignedAt
	}
	return s
}

// inputFor is a valid input for each action, naming what inState recorded,
// so that a repeat of the current state is a no-op.
func inputFor(a Action, k Kind) ActionInput {
	c := bothConsent
	in := ActionInput{Consent: &c}
	switch a {
	case Accept:
		in.Specialists = assignments(k)
	case Decline:
		in.Reason = "本院该专业专家本周外出"
	case Schedule:
		sc := theSchedule
		in.Schedule = &sc
	case Cancel:
		in.Reason = "患者已好转，暂不需要会诊"
	}
	return in
}

func mustDur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}
