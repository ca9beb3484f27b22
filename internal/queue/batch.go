package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"duikou/referral"
)

// Batch collects queue changes and notifications and sends them to Redis in
// one pipeline: one round trip for a whole outbox batch instead of two to
// four per change. Redis runs them in the order they were added, each script
// atomically, so a batch lands exactly as the same calls made one by one
// (Upsert, Remove, MarkBreached, Publish, PublishChange); each change keeps
// its idempotency by version and its tombstone.
type Batch struct {
	q       *Referrals
	now     time.Time
	ops     []batchOp
	scripts []*lua
	sent    bool
}

// batchOp is one command of a batch and what to make of its reply.
type batchOp struct {
	queue func(ctx context.Context, p redis.Pipeliner) redis.Cmder
	// done reads the reply; nil for notifications, whose failure costs a
	// screen one refresh and does not fail the batch.
	done func(c redis.Cmder) error
}

// Applied tells, once the batch ran, whether a change changed the queue.
type Applied struct {
	Changed bool
}

// NewBatch starts an empty batch.
func (q *Referrals) NewBatch() *Batch { return &Batch{q: q, now: q.opt.Now()} }

// Len is the number of commands in the batch.
func (b *Batch) Len() int { return len(b.ops) }

func (b *Batch) use(s *lua) {
	for _, u := range b.scripts {
		if u == s {
			return
		}
	}
	b.scripts = append(b.scripts, s)
}

// Upsert adds Upsert(e) to the batch: the queued event is published only if
// it changed the queue.
func (b *Batch) Upsert(e Entry) (*Applied, error) {
	res := &Applied{}
	ev := &Event{Type: EventQueued, ID: e.ID, Version: e.Version, DepartmentID: e.DepartmentID}
	keys, args, err := b.q.upsertArgs(e, b.now, ev)
	if err != nil {
		return nil, err
	}
	b.use(upsertScript)
	b.ops = append(b.ops, batchOp{
		queue: func(ctx context.Context, p redis.Pipeliner) redis.Cmder {
			return upsertScript.EvalSha(ctx, p, keys, args...)
		},
		done: func(c redis.Cmder) error {
			n, err := c.(*redis.Cmd).Int()
			if err != nil {
				return fmt.Errorf("queue upsert: %w", err)
			}
			res.Changed = n == 1
			return nil
		},
	})
	return res, nil
}

// Remove adds Remove(id, version) to the batch. hospitalID and departmentID
// name the desk whose queue the ticket was in, as the change says: then the
// removal needs no look-up. Either may be empty when the caller does not know
// it; the script then finds the queue from the stored entry.
func (b *Batch) Remove(id string, version int, hospitalID, departmentID string) (*Applied, error) {
	res := &Applied{}
	keys, args, err := b.q.removeArgs(id, version, hospitalID, departmentID, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	b.use(removeScript)
	b.ops = append(b.ops, batchOp{
		queue: func(ctx context.Context, p redis.Pipeliner) redis.Cmder {
			return removeScript.EvalSha(ctx, p, keys, args...)
		},
		done: func(c redis.Cmder) error {
			n, err := c.(*redis.Cmd).Int()
			if err != nil {
				return fmt.Errorf("queue remove: %w", err)
			}
			res.Changed = n == 1
			return nil
		},
	})
	return res, nil
}

// MarkBreached adds MarkBreached to the batch.
func (b *Batch) MarkBreached(id string, k referral.BreachKind, due time.Time) (*Applied, error) {
	cid, err := compactID(id)
	if err != nil {
		return nil, err
	}
	if k != referral.ClaimBreach && k != referral.DecideBreach {
		return nil, fmt.Errorf("queue: unknown deadline %q", k)
	}
	res := &Applied{}
	b.use(breachScript)
	b.ops = append(b.ops, batchOp{
		queue: func(ctx context.Context, p redis.Pipeliner) redis.Cmder {
			return breachScript.EvalSha(ctx, p, []string{b.q.entriesKey(), b.q.breachKey()}, cid, string(k), due.UnixMilli())
		},
		done: func(c redis.Cmder) error {
			n, err := c.(*redis.Cmd).Int()
			if err != nil {
				return fmt.Errorf("queue mark breach: %w", err)
			}
			res.Changed = n == 1
			return nil
		},
	})
	return res, nil
}

// Publish adds Publish(hospitalID, ev) to the batch.
func (b *Batch) Publish(hospitalID string, ev Event) error {
	channel, msg, err := b.q.message(hospitalID, &ev)
	if err != nil {
		return err
	}
	b.publish(channel, msg)
	return nil
}

// PublishChange adds PublishChange(hospitalID, n) to the batch.
func (b *Batch) PublishChange(hospitalID string, n Notice) error {
	msg, err := noticeMessage(n)
	if err != nil {
		return err
	}
	b.publish(b.q.changesChannel(hospitalID), msg)
	return nil
}

func (b *Batch) publish(channel, msg string) {
	b.ops = append(b.ops, batchOp{queue: func(ctx context.Context, p redis.Pipeliner) redis.Cmder {
		return p.Publish(ctx, channel, msg)
	}})
}

// Exec sends the batch in one pipeline and reads the replies. built tells
// whether the queue's rebuild marker was there after the batch: false means
// Redis lost its data (restarted empty, or flushed), and the caller should
// rebuild (Referrals.EnsureBuilt). An empty batch sends nothing and reports
// built. A batch runs once.
//
// The scripts are loaded at the head of the same pipeline (SCRIPT LOAD of a
// known script costs Redis a hash look-up), so a Redis that restarted and
// forgot them never answers NOSCRIPT half way through a batch.
func (b *Batch) Exec(ctx context.Context) (built bool, err error) {
	if b.sent {
		return false, errBatchUsed
	}
	b.sent = true
	if len(b.ops) == 0 {
		return true, nil
	}
	pipe := b.q.conn.Pipeline()
	for _, s := range b.scripts {
		pipe.ScriptLoad(ctx, s.src)
	}
	cmds := make([]redis.Cmder, len(b.ops))
	for i, op := range b.ops {
		cmds[i] = op.queue(ctx, pipe)
	}
	marker := pipe.Exists(ctx, b.q.builtKey())
	_, _ = pipe.Exec(ctx) // each reply is judged below
	for i, op := range b.ops {
		if op.done == nil {
			continue
		}
		if err := op.done(cmds[i]); err != nil {
			return false, err
		}
	}
	if err := marker.Err(); err != nil {
		return false, fmt.Errorf("queue: %w", err)
	}
	return marker.Val() == 1, nil
}

func noticeMessage(n Notice) (string, error) {
	if n.Type == "" {
		n.Type = NoticeChanged
	}
	if n.At.IsZero() {
		n.At = time.Now().UTC()
	}
	b, err := json.Marshal(n)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

var errBatchUsed = errors.New("queue: batch already sent")
