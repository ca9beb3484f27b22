package referral

import (
	"time"

	"duikou/internal/auth"
)

// The world of these tests: a county hospital refers up to its tertiary
// partner; a third hospital, paired with both, is no party to the ticket.
const (
	countyID    = "0194f5c2-0000-7000-8000-00000000c001"
	tertiaryID  = "0194f5c2-0000-7000-8000-00000000a001"
	outsiderID  = "0194f5c2-0000-7000-8000-00000000e001"
	patientID   = "0194f5c2-0000-7000-8000-0000000000b1"
	consentID   = "0194f5c2-0000-7000-8000-0000000000c1"
	countyDept  = "0194f5c2-0000-7000-8000-0000000000d1"
	countyDoc   = "0194f5c2-0000-7000-8000-0000000000d2"
	cardioDept  = "0194f5c2-0000-7000-8000-0000000000d3"
	neuroDept   = "0194f5c2-0000-7000-8000-0000000000d4"
	bedID       = "0194f5c2-0000-7000-8000-0000000000f1"
	fileID      = "0194f5c2-0000-7000-8000-0000000000f2"
	claimerID   = "0194f5c2-0000-7000-8000-000000000101"
	otherDeskID = "0194f5c2-0000-7000-8000-000000000102"
)

// t0 is the moment every test ticket was written; now is a little later.
var (
	t0  = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	now = t0.Add(30 * time.Minute)
)

func principal(user, hospital string, roles ...auth.Role) auth.Principal {
	return auth.Principal{
		UserID: user, HospitalID: hospital, Roles: roles,
		Reach: map[string]bool{countyID: true, tertiaryID: true, outsiderID: true},
	}
}

var (
	refDoctor     = principal("u-ref-doctor", countyID, auth.CountyDoctor)
	refDesk       = principal("u-ref-desk", countyID, auth.ReferralDesk)
	refAdmin      = principal("u-ref-admin", countyID, auth.Admin, auth.ProgramOffice)
	rcvClaimer    = principal(claimerID, tertiaryID, auth.ReferralDesk)
	rcvDesk       = principal(otherDeskID, tertiaryID, auth.ReferralDesk)
	rcvSpecialist = principal("u-rcv-specialist", tertiaryID, auth.Specialist)
	rcvAuditor    = principal("u-rcv-auditor", tertiaryID, auth.Auditor)
	outsider      = principal("u-outsider", outsiderID, auth.ReferralDesk, auth.Specialist, auth.CountyDoctor)
)

var (
	theSchedule = Schedule{Kind: Bed, Slot: "心内科3病区12床", At: now.Add(2 * time.Hour)}
	theTarget   = Target{HospitalID: tertiaryID, DepartmentID: neuroDept}
)

func ptr(t time.Time) *time.Time { return &t }

// complete is a green-channel up-referral with every field filled in.
func complete() Referral {
	return Referral{
		ID:                    "0194f5c2-0000-7000-8000-000000000001",
		Number:                "ZZ-20261122-000123",
		Direction:             Up,
		Priority:              Emergency,
		GreenChannel:          true,
		GreenCategory:         ChestPain,
		TransferRisk:          RiskI,
		PatientID:             patientID,
		ReferringHospitalID:   countyID,
		ReferringDepartmentID: countyDept,
		ReferringDoctorID:     countyDoc,
		ReceivingHospitalID:   tertiaryID,
		ReceivingDepartmentID: cardioDept,
		Diagnoses:             []Diagnosis{{Code: "I21.0", Text: "急性前壁ST段抬高型心肌梗死"}},
		Reason:                "需急诊PCI，本院无导管室",
		ClinicalSummary:       "胸痛2小时，心电图V1-V4导联ST段抬高",
		TreatmentGiven:        "阿司匹林300mg、氯吡格雷600mg嚼服",
		Transport:             Transport{Mode: ByAmbulance, Escort: EscortDoctor},
		RequestedWindow:       &Window{From: t0, To: t0.Add(6 * time.Hour)},
		Attachments:           []AttachmentRef{{ID: fileID, Name: "ecg.pdf", ContentType: "application/pdf", Size: 120_000}},
		ConsentID:             consentID,
		Status:                Draft,
		Version:               1,
		CreatedBy:             "u-ref-doctor",
		CreatedAt:             t0,
		UpdatedAt:             t0,
	}
}

// inState is the complete ticket as it stands in status s, with what the
// steps before would have recorded: the claim held by rcvClaimer, the
// schedule theSchedule, the redirect theTarget.
func inState(s Status) Referral {
	r := complete()
	r.Status = s
	if s != Draft {
		r.SubmittedAt, r.QueuedAt = ptr(t0), ptr(t0)
	}
	switch s {
	case Claimed:
		r.ClaimedBy, r.ClaimedAt = claimerID, ptr(t0.Add(time.Minute))
	case Redirected:
		r.Redirect = &Target{HospitalID: theTarget.HospitalID, DepartmentID: theTarget.DepartmentID}
	case Scheduled, InTransit, Arrived, Completed, Closed:
		s := theSchedule
		r.Schedule = &s
	}
	return r
}

// inputFor is a valid input for each action.
func inputFor(a Action) ActionInput {
	switch a {
	case Accept:
		return ActionInput{BedReservationID: bedID}
	case Reject:
		return ActionInput{ReasonCode: NoCapacity}
	case RequestInfo:
		return ActionInput{Question: "请补充肌钙蛋白结果"}
	case Resubmit:
		return ActionInput{Answer: "肌钙蛋白I 5.2 ng/mL"}
	case Redirect:
		t := theTarget
		return ActionInput{Target: &t, Reason: "神经内科更合适"}
	case Book:
		s := theSchedule
		return ActionInput{Schedule: &s}
	case Complete:
		return ActionInput{Outcome: Discharged, Feedback: "PCI术后第5天出院，建议下转康复"}
	case Cancel:
		return ActionInput{Reason: "患者家属要求暂缓转诊"}
	}
	return ActionInput{}
}
