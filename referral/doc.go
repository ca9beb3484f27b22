// Package referral is the domain core of two-way referral (双向转诊): the
// referral ticket (转诊单), the rules for moving it, where it may go, and how
// urgently it must be handled. It holds no storage, transport or queue code;
// those layers call into it and keep its answers.
//
// A ticket is written by the referring hospital and worked by the receiving
// hospital's referral desk (转诊办). Decide is the only way a ticket changes
// state: one table (Rules) says, for every action, from which states it may
// start, where it ends, and which roles of which side may take it. Decide
// answers a caller who is no party to the ticket with not found, so a ticket's
// existence does not leak across hospitals; a party in the wrong role or on
// the wrong side with forbidden; a move the state does not allow with a
// conflict. Repeating the state a ticket is already in is a no-op, so clients
// may retry safely. Every real change returns an Event for the append-only
// history and raises the version the store checks against If-Match.
//
// Up-referrals follow the pairings (CheckRoute): that is where the agreement
// has set up the green channel and reserved beds. Down-referrals go back to
// the patient's home county.
//
// Queue order (QueueScore) puts green-channel tickets first, then emergency,
// urgent and routine, first-come inside a band; a routine ticket that waited
// too long is served with the urgent ones so that it cannot starve. Deadlines
// (Due, Breaches) run per band from the moment a ticket reaches a desk; a
// breach is reported for escalation and never changes the ticket.
package referral
