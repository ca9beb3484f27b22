package consult

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/referral"
)

// Opinion is the written opinion (会诊意见). It is a draft while SignedAt is
// nil; once signed it never changes, and Digest lets anyone check that what
// is shown is what was signed.
type Opinion struct {
	Findings        string               `json:"findings"`
	Impression      string               `json:"impression"`
	Recommendations string               `json:"recommendations"`
	Diagnoses       []referral.Diagnosis `json:"diagnoses"`
	ReferralAdvised bool                 `json:"referral_advised"`
	// SuggestedDepartmentID is the target hospital's department the patient
	// should be referred to, when a referral is advised.
	SuggestedDepartmentID string `json:"suggested_department_id,omitempty"`

	AuthorID  string     `json:"author_id"` // who last wrote the draft
	UpdatedAt time.Time  `json:"updated_at"`
	SignedBy  string     `json:"signed_by,omitempty"`
	SignedAt  *time.Time `json:"signed_at"`
	Digest    string     `json:"digest,omitempty"` // SHA-256 of the signed content, hex
}

// Signed reports whether the opinion is signed and so immutable.
func (o Opinion) Signed() bool { return o.SignedAt != nil }

// OpinionInput is what the specialist writes.
type OpinionInput struct {
	Findings              string               `json:"findings"`
	Impression            string               `json:"impression"`
	Recommendations       string               `json:"recommendations"`
	Diagnoses             []referral.Diagnosis `json:"diagnoses"`
	ReferralAdvised       bool                 `json:"referral_advised"`
	SuggestedDepartmentID string               `json:"suggested_department_id"`
}

func (in OpinionInput) opinion() Opinion {
	return Opinion{
		Findings: in.Findings, Impression: in.Impression, Recommendations: in.Recommendations,
		Diagnoses: slices.Clone(in.Diagnoses), ReferralAdvised: in.ReferralAdvised,
		SuggestedDepartmentID: in.SuggestedDepartmentID,
	}
}

// sameAs reports whether in, once normalised, is the content of o.
func (in OpinionInput) sameAs(o Opinion) bool {
	c := in.opinion()
	if c.check(false) != nil {
		return false
	}
	return c.Findings == o.Findings && c.Impression == o.Impression && c.Recommendations == o.Recommendations &&
		slices.Equal(c.Diagnoses, o.Diagnoses) && c.ReferralAdvised == o.ReferralAdvised &&
		c.SuggestedDepartmentID == o.SuggestedDepartmentID
}

// MaxOpinionDiagnoses bounds the diagnoses an opinion lists.
const MaxOpinionDiagnoses = referral.MaxDiagnoses

// check validates the content; complete asks for what signing needs.
func (o *Opinion) check(complete bool) error {
	var v apperr.Invalid
	o.Findings = v.Text("opinion.findings", o.Findings, complete, apperr.MaxText)
	o.Impression = v.Text("opinion.impression", o.Impression, complete, apperr.MaxText)
	o.Recommendations = v.Text("opinion.recommendations", o.Recommendations, complete, apperr.MaxText)
	if len(o.Diagnoses) > MaxOpinionDiagnoses {
		v.Add("opinion.diagnoses", fmt.Sprintf("must hold at most %d diagnoses", MaxOpinionDiagnoses))
	} else {
		seen := map[string]bool{}
		for i := range o.Diagnoses {
			d := &o.Diagnoses[i]
			at := fmt.Sprintf("opinion.diagnoses[%d]", i)
			code, ok := referral.NormalizeICD10(d.Code)
			switch {
			case code == "":
				v.Add(at+".code", "is required")
			case !ok:
				v.Add(at+".code", "must be an ICD-10 code like I21.0, I63 or S06.5")
			case seen[code]:
				v.Add(at+".code", "is listed twice")
			default:
				d.Code = code
				seen[code] = true
			}
			d.Text = v.Text(at+".text", d.Text, true, apperr.MaxName)
		}
	}
	o.SuggestedDepartmentID = strings.TrimSpace(o.SuggestedDepartmentID)
	switch {
	case !o.ReferralAdvised && o.SuggestedDepartmentID != "":
		v.Add("opinion.suggested_department_id", "is only given when a referral is advised")
	case o.ReferralAdvised && o.SuggestedDepartmentID == "" && complete:
		v.Add("opinion.suggested_department_id", "is required when a referral is advised: the department to refer to")
	case o.SuggestedDepartmentID != "" && !apperr.IsID(o.SuggestedDepartmentID):
		v.Add("opinion.suggested_department_id", "must be an id")
	}
	return v.Err()
}

// opinionStates are where a draft may be written: from acceptance, so a
// specialist can prepare from the case file, until it is signed.
var opinionStates = []Status{Accepted, Scheduled, Live, Ended}

// WriteOpinion saves the opinion draft of session s. Only an assigned
// specialist writes it, and never once it is signed: a signed opinion is
// amended by addenda only. It returns the session with the new draft (version
// raised) and the history line.
func WriteOpinion(s Session, p auth.Principal, in OpinionInput, now time.Time) (Session, Event, error) {
	if err := mayWrite(s, p, "write the opinion of"); err != nil {
		return s, Event{}, err
	}
	if s.Opinion != nil && s.Opinion.Signed() {
		return s, Event{}, apperr.Conflict("the opinion is signed and can no longer be changed; add a signed addendum")
	}
	if !slices.Contains(opinionStates, s.Status) {
		return s, Event{}, apperr.Conflict("cannot write the opinion of " + article(s.Status) + " session")
	}
	op := in.opinion()
	if err := op.check(false); err != nil {
		return s, Event{}, err
	}
	op.AuthorID, op.UpdatedAt = p.UserID, now
	next := s
	next.Opinion = &op
	next.Version++
	next.UpdatedAt = now
	ev := Event{Action: DraftOpinion, From: s.Status, To: s.Status, Actor: p.UserID, ActorHospitalID: p.HospitalID, At: now}
	return next, ev, nil
}

// mayWrite: the caller must be an assigned specialist of the target side of
// a session that has an opinion.
func mayWrite(s Session, p auth.Principal, what string) error {
	switch SideOf(s, p) {
	case NoSide:
		return apperr.ErrNotFound
	case Target:
	default:
		return apperr.Forbidden("only the target hospital's specialists may " + what + " a session")
	}
	if !slices.Contains(withOpinion, s.Kind) {
		return apperr.Conflict("a " + kindName(s.Kind) + " has no written opinion")
	}
	if !p.Has(auth.Specialist) || !s.Assigned(p.UserID) {
		return apperr.Forbidden("only a specialist assigned to this session may " + what + " it")
	}
	return nil
}

// signOpinion completes and signs the opinion: the text given, or the saved
// draft when none is.
func signOpinion(s Session, p auth.Principal, in *OpinionInput, now time.Time) (Opinion, error) {
	var op Opinion
	switch {
	case in != nil:
		op = in.opinion()
	case s.Opinion != nil:
		op = *s.Opinion
		op.Diagnoses = slices.Clone(op.Diagnoses)
	default:
		return Opinion{}, apperr.Field("opinion", "is required: write the findings, impression and recommendations")
	}
	if err := op.check(true); err != nil {
		return Opinion{}, err
	}
	t := signingTime(now)
	op.AuthorID, op.UpdatedAt = p.UserID, now
	op.SignedBy, op.SignedAt = p.UserID, &t
	op.Digest = op.digest(s.ID)
	return op, nil
}

// signingTime is the instant a signature records: UTC, to the microsecond,
// which both database engines keep exactly, so that a digest computed now
// still matches the opinion read back later.
func signingTime(now time.Time) time.Time { return now.UTC().Truncate(time.Microsecond) }

// digest is SHA-256 over the session id, the content and the signature,
// each length-prefixed so that no two different opinions hash alike.
func (o Opinion) digest(sessionID string) string {
	h := sha256.New()
	put := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(sessionID)
	put(o.Findings)
	put(o.Impression)
	put(o.Recommendations)
	for _, d := range o.Diagnoses {
		put(d.Code)
		put(d.Text)
	}
	put(fmt.Sprint(len(o.Diagnoses), o.ReferralAdvised))
	put(o.SuggestedDepartmentID)
	put(o.SignedBy)
	if o.SignedAt != nil {
		put(o.SignedAt.UTC().Format(time.RFC3339Nano))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Intact reports whether a signed opinion is still what was signed for the
// session: the store and the reader can check nothing changed it.
func (o Opinion) Intact(sessionID string) bool {
	return o.Signed() && o.Digest == o.digest(sessionID)
}

// Addendum amends a signed opinion. It is signed by its author when written
// and, like the opinion, never changes; addenda are only appended.
type Addendum struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Seq       int       `json:"seq"` // 1, 2, … in order of writing; the store assigns it
	Text      string    `json:"text"`
	SignedBy  string    `json:"signed_by"`
	SignedAt  time.Time `json:"signed_at"`
	Digest    string    `json:"digest"`
}

// AddAddendum writes a signed addendum to the signed opinion of s. Only a
// specialist assigned to the session may amend what the session concluded.
func AddAddendum(s Session, p auth.Principal, text string, now time.Time) (Addendum, error) {
	if err := mayWrite(s, p, "amend the opinion of"); err != nil {
		return Addendum{}, err
	}
	if s.Opinion == nil || !s.Opinion.Signed() {
		return Addendum{}, apperr.Conflict("only a signed opinion takes addenda; edit the draft instead")
	}
	var v apperr.Invalid
	text = v.Text("text", text, true, apperr.MaxText)
	if err := v.Err(); err != nil {
		return Addendum{}, err
	}
	a := Addendum{SessionID: s.ID, Text: text, SignedBy: p.UserID, SignedAt: signingTime(now)}
	a.Digest = a.digest()
	return a, nil
}

func (a Addendum) digest() string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d:%s|%d:%s|%d:%s|%s", len(a.SessionID), a.SessionID,
		len(a.Text), a.Text, len(a.SignedBy), a.SignedBy, a.SignedAt.UTC().Format(time.RFC3339Nano))))
	return hex.EncodeToString(sum[:])
}

// Intact reports whether the addendum is still what was signed.
func (a Addendum) Intact() bool { return a.Digest == a.digest() }

// priorityOf maps a session's urgency to a referral's priority.
var priorityOf = map[Urgency]referral.Priority{
	Routine: referral.Routine, Urgent: referral.Urgent, Emergency: referral.Emergency,
}

// DraftReferral prefills the up-referral an opinion advises (the "draft the
// referral" button): the session's patient and requesting doctor, to the
// department the opinion suggests at the target hospital, with the opinion's
// diagnoses, its impression as the reason, and the case summary with the
// findings. What the opinion cannot know (transfer risk, transport, consent)
// is left for the doctor: the result is a draft for referral.New, and the
// referral is checked in full when it is sent.
func DraftReferral(op Opinion, s Session) (referral.Input, error) {
	switch {
	case !op.Signed():
		return referral.Input{}, apperr.Conflict("a referral is drafted from a signed opinion only")
	case !op.ReferralAdvised:
		return referral.Input{}, apperr.Conflict("the opinion does not advise a referral")
	case !s.Kind.HasPatient() || s.PatientID == "":
		return referral.Input{}, apperr.Conflict("a session without a patient cannot lead to a referral")
	}
	// Text fields refuse control characters, so the parts are joined on one line.
	summary := s.ClinicalSummary
	if op.Findings != "" {
		if summary != "" {
			summary += "；"
		}
		summary += "远程会诊所见：" + op.Findings
	}
	in := referral.Input{
		Direction:             referral.Up,
		Priority:              priorityOf[s.Urgency],
		PatientID:             s.PatientID,
		ReferringDepartmentID: s.RequestingDepartmentID,
		ReferringDoctorID:     s.RequesterID,
		ReceivingHospitalID:   s.TargetHospitalID,
		ReceivingDepartmentID: op.SuggestedDepartmentID,
		Diagnoses:             slices.Clone(op.Diagnoses),
		Reason:                clip("远程会诊意见建议上转："+op.Impression, apperr.MaxText),
		ClinicalSummary:       clip(summary, apperr.MaxText),
	}
	for _, a := range s.Attachments {
		// A referral carries files up to its own limit; larger DICOM series
		// stay with the session, which the receiving hospital can open.
		if a.Size <= referral.MaxAttachment && len(in.Attachments) < referral.MaxAttachments {
			in.Attachments = append(in.Attachments, referral.AttachmentRef{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size})
		}
	}
	return in, nil
}

// clip cuts s to at most max characters, on a character boundary.
func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max])
}
