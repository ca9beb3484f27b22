package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"duikou/referral"
)

// ReferralStatsQuery selects the tickets statistics read: first submitted in
// [From, To), of Direction when set, that one of PartyHospitalIDs is a party
// to (sent by it, or sent to it). An empty PartyHospitalIDs matches nothing:
// a caller without scope reads no ticket, never every ticket.
type ReferralStatsQuery struct {
	From, To         time.Time
	Direction        referral.Direction
	PartyHospitalIDs []string
	// Limit stops the read after this many rows; the caller asks for one
	// more than it accepts to learn that the range holds too many.
	Limit int
}

// ReferralStatRow is what statistics need of one ticket: the ticket with
// only its counted fields filled (and both hospitals, so that a pairing's
// report keeps the tickets between its two hospitals), and the referring hospital's name and
// tier.
type ReferralStatRow struct {
	Ticket       referral.Referral
	ReferrerName string
	ReferrerTier string
}

// ReferralStats streams the selected tickets to fn, one row at a time, so a
// long range never sits in memory; fn's error stops the read and is
// returned. Only the columns statistics count are read; diagnoses only of
// up-referrals, the only ones ranked by diagnosis.
func (s *Referrals) ReferralStats(ctx context.Context, q ReferralStatsQuery, fn func(ReferralStatRow) error) error {
	if q.Limit <= 0 {
		return fmt.Errorf("store: referral statistics without a row limit")
	}
	var w dirWhere
	w.add("r.submitted_at >= ?", q.From)
	w.add("r.submitted_at < ?", q.To)
	if q.Direction != "" {
		w.add("r.direction = ?", string(q.Direction))
	}
	w.in("r.referring_hospital_id", q.PartyHospitalIDs)
	w.in("r.receiving_hospital_id", q.PartyHospitalIDs)
	n := len(w.conds)
	w.conds = append(w.conds[:n-2], "("+w.conds[n-2]+" OR "+w.conds[n-1]+")")
	where := " WHERE " + strings.Join(w.conds, " AND ")
	w.args = append(w.args, q.Limit)
	rows, err := s.db.Query(ctx, `SELECT r.direction, r.priority, r.green_channel, r.status,
		r.referring_hospital_id, r.receiving_hospital_id, r.submitted_at, r.queued_at, r.claimed_at, r.decided_at, r.claim_by, r.decide_by,
		CASE WHEN r.direction = 'up' THEN r.diagnoses ELSE '[]' END, COALESCE(h.name, ''), COALESCE(h.tier, '')
		FROM referrals r LEFT JOIN hospitals h ON h.id = r.referring_hospital_id`+where+
		fmt.Sprintf(" LIMIT $%d", len(w.args)), w.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var row ReferralStatRow
		t := &row.Ticket
		var direction, priority, status, diagnoses string
		if err := rows.Scan(&direction, &priority, &t.GreenChannel, &status, &t.ReferringHospitalID, &t.ReceivingHospitalID,
			&t.SubmittedAt, &t.QueuedAt, &t.ClaimedAt, &t.DecidedAt, &t.ClaimBy, &t.DecideBy, &diagnoses, &row.ReferrerName, &row.ReferrerTier); err != nil {
			return err
		}
		t.Direction, t.Priority, t.Status = referral.Direction(direction), referral.Priority(priority), referral.Status(status)
		if err := json.Unmarshal([]byte(diagnoses), &t.Diagnoses); err != nil {
			return fmt.Errorf("referral statistics: diagnoses: %w", err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}
