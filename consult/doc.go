// Package consult is the domain core of remote sessions (远程医疗): a
// consultation with one specialist (会诊), a multidisciplinary team meeting
// (MDT), a remote teaching round (远程教学查房), an imaging review (远程影像诊断)
// and a booked slot of a specialist's remote expert clinic (远程专家门诊). It
// holds the session request, the rules for moving it, the written opinion
// (会诊意见) with its addenda, teaching-round attendance, clinic slots and the
// reading of DICOM tags. No storage, transport or media code lives here.
//
// A session is requested by a clinician of the requesting hospital (the
// requester side) of a hospital it is paired with, and answered by
// specialists of that target hospital (the target side); hospitals invited to
// a teaching round see it and act on nothing. Decide is the only way a
// session changes state; one table (Rules) says for every action and kind
// from which states it may start, where it ends, which roles of which side may
// take it, whether only a specialist assigned to the session may, and whether
// it needs the patient's consent. As in the referral package, a caller who is
// no party gets not found, a party in the wrong role or side forbidden, a move
// the state or kind does not allow a conflict, and a repeat of the current
// state is a no-op that writes nothing. Every change returns an Event for the
// append-only history and raises the version the store checks.
//
// Consent is a fact the application service resolves (the patient's active
// consents to remote consultation and to sharing data with the target
// hospital) and hands to Decide in ActionInput.Consent; a session about a
// patient is never scheduled, started or booked without both.
//
// The opinion is written by an assigned specialist, may be redrafted until it
// is signed, and is immutable from then on: corrections are signed addenda,
// appended and never changed. A digest over the signed content lets anyone
// check that what is shown is what was signed. An opinion is signed once the
// session has ended, except for an imaging review, which is reported from the
// images like any remote imaging diagnosis and needs no live session.
// DraftReferral prefills the up-referral an opinion advises.
//
// Requests carry response deadlines per urgency (Deadlines, Breaches); a
// breach is reported for escalation and never changes the session.
//
// Specialists publish remote-clinic slots (Publish) by the start of the week
// before the slot's week, so paired county hospitals post the schedule a
// week ahead (提前一周公示); only the specialist's hospital and hospitals
// paired with it see them (Visible). Book takes a place first come and
// returns the expert-clinic session, already scheduled; the store takes the
// place with a conditional update, so the last place is never given twice.
package consult
