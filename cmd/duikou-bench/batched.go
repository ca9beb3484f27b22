package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"duikou/internal/referrals"
	"duikou/referral"
)

// batchSize is how many tickets the batched baseline writes per transaction.
const batchSize = 16

// rowsOf is a VALUES list of rows tuples of cols placeholders each, numbered
// on from $1, every tuple ending with the constants fixed.
func rowsOf(rows, cols int, fixed ...string) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", n)
			n++
		}
		for _, f := range fixed {
			b.WriteString(", " + f)
		}
		b.WriteString(")")
	}
	return b.String()
}

// batchedBaseline writes the baseline's rows (shared ones included) for
// batchSize tickets per transaction, one multi-row statement per table,
// pipelined (the day's counter moved once per batch, outside it): not what the server does (one transaction per request), but
// the floor of a design that would combine concurrent submits into one
// transaction, for comparison with the per-ticket floor.
func (b *referralBench) batchedBaseline(ctx context.Context, stderr io.Writer) baselineResult {
	res := baselineResult{stats: newStep(fmt.Sprintf("baseline, %d tickets per transaction (multi-row statements)", batchSize))}
	if _, err := b.db.Exec(ctx, baselineSchema); err != nil {
		res.stats.record(0, fmt.Errorf("baseline schema: %w", err))
		return res
	}
	fmt.Fprintf(stderr, "%s…\n", res.stats.name)
	run := tag()
	day := "g" + run
	answer := []byte(strings.Repeat("x", 1800))
	n := b.o.tickets
	txs := (n + batchSize - 1) / batchSize
	var written atomic.Int64
	waits := sampleWaits(ctx, b.watch)
	cpu := startCPU()
	pool(ctx, b.o.clients, txs, b.o.duration, res.stats, func(ctx context.Context, _, k int) error {
		first, count := k*batchSize, min(batchSize, n-k*batchSize)
		// The batch's numbers come from the day's counter in a statement of
		// its own, outside the transaction, as the server takes its blocks:
		// inside, the counter's row lock would queue every batch behind the
		// one before.
		var last int64
		if err := b.db.QueryRow(ctx, `INSERT INTO baseline.referral_numbers (day, last) VALUES ($1, $2)
			ON CONFLICT (day) DO UPDATE SET last = baseline.referral_numbers.last + $2 RETURNING last`, day, count).Scan(&last); err != nil {
			return err
		}
		now := time.Now().UTC()
		var keys, tickets, events, outbox []any
		ids := make([]string, count)
		for j := range count {
			i := first + j
			id := uuid.Must(uuid.NewV7()).String()
			ids[j] = id
			doc := b.doctors[i%len(b.doctors)]
			dept := b.sphDepts[i%len(b.sphDepts)]
			fp := sha256.Sum256([]byte(id))
			keys = append(keys, doc.id, run+"-"+id, fp[:], answer, now)
			num := fmt.Sprintf("ZZ-%s-%06d", day, last-int64(count)+int64(j)+1)
			tickets = append(tickets, id, num, b.patients[i%len(b.patients)], b.linxi, b.linxiDep, doc.id, b.sph, dept,
				`[{"code":"I20.0","text":"不稳定型心绞痛"}]`, now, now.Add(48*time.Hour), uuid.Must(uuid.NewV7()).String(), doc.id, now, now, now, now)
			events = append(events, uuid.Must(uuid.NewV7()).String(), id, doc.id, b.linxi, now)
			payload, _ := json.Marshal(referrals.Change{ID: id, Number: num, Status: referral.Submitted, ReceivingHospitalID: b.sph,
				ReceivingDepartmentID: dept, Priority: referral.Routine, SubmittedAt: &now, QueuedAt: &now, ClaimBy: &now, DecideBy: &now, Version: 2})
			outbox = append(outbox, referrals.TopicChanged, id, string(payload), now)
		}
		err := pgx.BeginFunc(ctx, b.db, func(tx pgx.Tx) error {
			// One chain head moves by the batch's length; the audit hashes
			// chain in Go.
			var chain, seq int64
			var prev []byte
			if err := tx.QueryRow(ctx, `UPDATE baseline.audit_heads SET chain_seq = chain_seq + $2 WHERE chain = COALESCE((
					SELECT chain FROM baseline.audit_heads WHERE chain >= 0 AND chain < 16
					ORDER BY (chain - $1 + 16) % 16 LIMIT 1 FOR UPDATE SKIP LOCKED), $1)
				RETURNING chain, chain_seq, hash`, int64(k%16), int64(count)).Scan(&chain, &seq, &prev); err != nil {
				return err
			}
			var audit []any
			for j, id := range ids {
				i := first + j
				h := sha256.Sum256(append(prev, id...))
				audit = append(audit, chain, seq-int64(count)+int64(j)+1, now, b.doctors[i%len(b.doctors)].id, b.linxi, id,
					b.patients[i%len(b.patients)], randomHex(8), prev, h[:])
				prev = h[:]
			}
			batch := &pgx.Batch{}
			batch.Queue(`INSERT INTO baseline.idempotency_keys (user_id, key, fingerprint, body, created_at, status, content_type, etag) VALUES `+
				rowsOf(count, 5, "200", "'application/json'", `'"2"'`), keys...)
			batch.Queue(`INSERT INTO baseline.referrals (id, number, patient_id, referring_hospital_id, referring_department_id,
				referring_doctor_id, receiving_hospital_id, receiving_department_id, diagnoses, requested_from, requested_to, consent_id,
				created_by, created_at, updated_at, submitted_at, queued_at, direction, priority, transfer_risk, reason, clinical_summary,
				treatment_given, transport_mode, transport_escort, attachments, status, version) VALUES `+
				rowsOf(count, 17, "'up'", "'routine'", "2", "'需冠脉造影评估'", "'反复胸闷1周，含服硝酸甘油可缓解'", "'阿司匹林、他汀'",
					"'hospital_vehicle'", "'nurse'", "'[]'", "'submitted'", "2"), tickets...)
			batch.Queue(`INSERT INTO baseline.referral_events (id, referral_id, actor, actor_hospital_id, at, seq, action, from_status, to_status) VALUES `+
				rowsOf(count, 5, "1", "'submit'", "'draft'", "'submitted'"), events...)
			batch.Queue(`INSERT INTO baseline.outbox (topic, key, payload, created_at) VALUES `+rowsOf(count, 4), outbox...)
			batch.Queue(`INSERT INTO baseline.audit_log (chain, chain_seq, at, actor_id, actor_hospital_id, resource_id, patient_id,
				request_id, prev_hash, hash, action, resource_type, outcome, client_addr, detail) VALUES `+
				rowsOf(count, 10, "'referral.submit'", "'referral'", "'success'", "'127.0.0.1'", "'draft → submitted'"), audit...)
			return tx.SendBatch(ctx, batch).Close()
		})
		if err == nil {
			written.Add(int64(count))
		}
		return err
	})
	res.tickets = int(written.Load())
	res.cpu = cpu.stop()
	res.waits = waits.report(5)
	return res
}
