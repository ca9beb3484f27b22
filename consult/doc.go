// Package consult is the domain core of remote sessions (远程医疗): a
// consultation with one specialist (会诊), a multidisciplinary team meeting
// (MDT), a remote teaching round (远程教学查房), an imaging review (远程影像诊断)
// and a booked slot of a specialist's remote expert clinic (远程专家门诊). It
// holds the session request, the rules for moving it, the written opinion
// (会诊意见) with its addenda, teaching-round attendance and clinic slots. No
// storage, transport or media code lives here.
//
// A session is requested by a clinician of the requesting hospital (the
// requester side) and answered by specialists of the target hospital (the
// target side). Decide is the only way a session changes state; one table
// (Rules) says for every action from which states it may start, where it
// ends, which roles of which side may take it, and whether only a specialist
// assigned to the session may. As in the referral package, a caller who is
// no party gets not found, a party in the wrong role or side forbidden, a move
// the state does not allow a conflict, and a repeat of the current state is a
// no-op that writes nothing.
//
// Consent is a fact the application service resolves (the patient's active
// consents to remote consultation and to sharing data with the target
// hospital) and hands to Decide in ActionInput.Consent; a session about a
// patient is never scheduled or started without both.
//
// The opinion is written by an assigned specialist, may be redrafted until it
// is signed, and is immutable from then on: corrections are signed addenda,
// appended and never changed.
package consult
