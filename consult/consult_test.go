package consult

import (
	"errors"
	"strings"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/auth"
)

func inputOf(s Session) Input {
	return Input{
		Kind: s.Kind, Urgency: s.Urgency, RequestingDepartmentID: s.RequestingDepartmentID,
		TargetHospitalID: s.TargetHospitalID, TargetDepartmentIDs: s.TargetDepartmentIDs,
		RequestedSpecialistIDs: s.RequestedSpecialistIDs, Question: s.Question, ClinicalSummary: s.ClinicalSummary,
		Attachments: s.Attachments, PatientID: s.PatientID, AttendeeHospitalIDs: s.AttendeeHospitalIDs,
	}
}

func TestRequestEveryKind(t *testing.T) {
	for _, k := range []Kind{Consult, MDT, TeachingRound, ImagingReview} {
		s, ev, err := Request(reqDoctor, inputOf(requested(k)), now)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if s.Status != Requested || s.Version != 1 || s.RequestingHospitalID != countyID || s.RequesterID != reqDoctorID ||
			!s.CreatedAt.Equal(now) || ev.Action != RequestAction || ev.To != Requested || ev.Actor != reqDoctorID {
			t.Errorf("%s: %+v %+v", k, s, ev)
		}
	}
}

func TestRequestIsTheRequestersAndCopiesItsInput(t *testing.T) {
	in := inputOf(requested(Consult))
	in.Attachments[1].Dicom.Modality = " ct "
	s, _, err := Request(reqDoctor, in, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Attachments[1].Dicom.Modality != "CT" || in.Attachments[1].Dicom.Modality != " ct " {
		t.Errorf("normalised %q, caller's now %q: validation must work on a copy", s.Attachments[1].Dicom.Modality, in.Attachments[1].Dicom.Modality)
	}
	for _, p := range []auth.Principal{reqDesk, reqAdmin, {UserID: reqDoctorID, Roles: []auth.Role{auth.CountyDoctor}}} {
		if _, _, err := Request(p, in, now); !errors.Is(err, apperr.ErrForbidden) {
			t.Errorf("request by %v: %v, want forbidden", p.Roles, err)
		}
	}
	lonely := reqDoctor
	lonely.Reach = map[string]bool{guestID: true}
	_, _, err = Request(lonely, in, now)
	assertFields(t, err, "target_hospital_id")
	noQuestion := in
	noQuestion.Question = ""
	_, _, err = Request(lonely, noQuestion, now)
	assertFields(t, err, "target_hospital_id", "question")

	clinic := inputOf(requested(ExpertClinic))
	_, _, err = Request(reqDoctor, clinic, now)
	assertFields(t, err, "kind")
}

// TestValidateEveryField: each bad value is reported under its JSON name.
func TestValidateEveryField(t *testing.T) {
	long := strings.Repeat("长", apperr.MaxText+1)
	cases := []struct {
		name   string
		kind   Kind
		change func(s *Session)
		fields []string
	}{
		{"no kind", Consult, func(s *Session) { s.Kind = "" }, []string{"kind"}},
		{"unknown kind", Consult, func(s *Session) { s.Kind = "webinar" }, []string{"kind"}},
		{"no urgency", Consult, func(s *Session) { s.Urgency = "" }, []string{"urgency"}},
		{"unknown urgency", Consult, func(s *Session) { s.Urgency = "asap" }, []string{"urgency"}},
		{"urgent teaching round", TeachingRound, func(s *Session) { s.Urgency = Urgent }, []string{"urgency"}},
		{"emergency clinic booking", ExpertClinic, func(s *Session) { s.Urgency = Emergency }, []string{"urgency"}},
		{"no requester", Consult, func(s *Session) { s.RequesterID = "" }, []string{"requester_id"}},
		{"no requesting hospital", Consult, func(s *Session) { s.RequestingHospitalID = "x" }, []string{"requesting_hospital_id"}},
		{"requesting department not an id", Consult, func(s *Session) { s.RequestingDepartmentID = "内科" }, []string{"requesting_department_id"}},
		{"no target hospital", Consult, func(s *Session) { s.TargetHospitalID = " " }, []string{"target_hospital_id"}},
		{"asking one's own hospital", Consult, func(s *Session) { s.TargetHospitalID = countyID }, []string{"target_hospital_id"}},
		{"no department", Consult, func(s *Session) { s.TargetDepartmentIDs = nil }, []string{"target_department_ids"}},
		{"two departments for a consult", Consult, func(s *Session) { s.TargetDepartmentIDs = []string{cardioDept, neuroDept} }, []string{"target_department_ids"}},
		{"one department for an MDT", MDT, func(s *Session) { s.TargetDepartmentIDs = []string{cardioDept} }, []string{"target_department_ids"}},
		{"a department twice", MDT, func(s *Session) { s.TargetDepartmentIDs = []string{cardioDept, cardioDept} }, []string{"target_department_ids[1]"}},
		{"a department not an id", MDT, func(s *Session) { s.TargetDepartmentIDs[1] = "neuro" }, []string{"target_department_ids[1]"}},
		{"too many departments", MDT, func(s *Session) { s.TargetDepartmentIDs = make([]string, MaxDepartments+1) }, []string{"target_department_ids"}},
		{"two named specialists for a consult", Consult, func(s *Session) { s.RequestedSpecialistIDs = []string{assignedID, secondID} }, []string{"requested_specialist_ids"}},
		{"a named specialist not an id", MDT, func(s *Session) { s.RequestedSpecialistIDs = []string{assignedID, "李主任"} }, []string{"requested_specialist_ids[1]"}},
		{"no question", Consult, func(s *Session) { s.Question = "\t" }, []string{"question"}},
		{"over-long question", Consult, func(s *Session) { s.Question = long }, []string{"question"}},
		{"no clinical summary", Consult, func(s *Session) { s.ClinicalSummary = "" }, []string{"clinical_summary"}},
		{"control characters in the summary", Consult, func(s *Session) { s.ClinicalSummary = "a\x00b" }, []string{"clinical_summary"}},
		{"no patient", MDT, func(s *Session) { s.PatientID = "" }, []string{"patient_id"}},
		{"patient not an id", ImagingReview, func(s *Session) { s.PatientID = "张三" }, []string{"patient_id"}},
		{"a patient on a teaching round", TeachingRound, func(s *Session) { s.PatientID = patientID }, []string{"patient_id"}},
		{"attendees of a consult", Consult, func(s *Session) { s.AttendeeHospitalIDs = []string{guestID} }, []string{"attendee_hospital_ids"}},
		{"the target invited as attendee", TeachingRound, func(s *Session) { s.AttendeeHospitalIDs = []string{tertiaryID} }, []string{"attendee_hospital_ids"}},
		{"an attendee twice", TeachingRound, func(s *Session) { s.AttendeeHospitalIDs = []string{guestID, guestID} }, []string{"attendee_hospital_ids[1]"}},
		{"a clinic session without its slot", ExpertClinic, func(s *Session) { s.SlotID = "" }, []string{"slot_id"}},
		{"a slot on a consult", Consult, func(s *Session) { s.SlotID = slotID }, []string{"slot_id"}},
		{"an imaging review without images", ImagingReview, func(s *Session) { s.Attachments = s.Attachments[:1] }, []string{"attachments"}},
		{"too many files", Consult, func(s *Session) { s.Attachments = make([]Attachment, MaxAttachments+1) }, []string{"attachments"}},
		{"file without id, name, kind, size", Consult, func(s *Session) { s.Attachments[0] = Attachment{} },
			[]string{"attachments[0].id", "attachments[0].name", "attachments[0].kind", "attachments[0].size"}},
		{"file attached twice", Consult, func(s *Session) { s.Attachments[1].ID = fileID }, []string{"attachments[1].id"}},
		{"file name with a path", Consult, func(s *Session) { s.Attachments[0].Name = "../etc/ecg.pdf" }, []string{"attachments[0].name"}},
		{"unknown attachment kind", Consult, func(s *Session) { s.Attachments[0].Kind = "video" }, []string{"attachments[0].kind"}},
		{"a PDF that is a Word file", Consult, func(s *Session) { s.Attachments[0].ContentType = "application/msword" }, []string{"attachments[0].content_type"}},
		{"an image that is a PDF", Consult, func(s *Session) { s.Attachments[0].Kind = Image }, []string{"attachments[0].content_type"}},
		{"a document over 50 MiB", Consult, func(s *Session) { s.Attachments[0].Size = MaxAttachment + 1 }, []string{"attachments[0].size"}},
		{"a DICOM file over 512 MiB", Consult, func(s *Session) { s.Attachments[1].Size = MaxDicomFile + 1 }, []string{"attachments[1].size"}},
		{"DICOM tags on a PDF", Consult, func(s *Session) { s.Attachments[0].Dicom = &DicomTags{Modality: "CT"} }, []string{"attachments[0].dicom"}},
		{"bad DICOM tags", Consult, func(s *Session) {
			s.Attachments[1].Dicom = &DicomTags{Modality: "C-T", StudyDate: "2026-11-20", BodyPart: strings.Repeat("X", 17),
				StudyDescription: strings.Repeat("d", 65), SeriesDescription: "a\nb", StudyInstanceUID: "1.2.abc"}
		}, []string{"attachments[1].dicom.modality", "attachments[1].dicom.study_date", "attachments[1].dicom.body_part",
			"attachments[1].dicom.study_description", "attachments[1].dicom.series_description", "attachments[1].dicom.study_instance_uid"}},
		{"a DICOM UID over 64 characters", Consult, func(s *Session) { s.Attachments[1].Dicom.StudyInstanceUID = "1." + strings.Repeat("2", 63) },
			[]string{"attachments[1].dicom.study_instance_uid"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := requested(c.kind)
			c.change(&s)
			assertFields(t, s.Validate(), c.fields...)
		})
	}
}

func TestEveryKindAsRequestedIsValid(t *testing.T) {
	for _, k := range Kinds {
		s := requested(k)
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	// A DICOM file whose tags could not be read is still a file.
	s := requested(ImagingReview)
	s.Attachments[1].Dicom = nil
	if err := s.Validate(); err != nil {
		t.Errorf("DICOM without tags: %v", err)
	}
}
