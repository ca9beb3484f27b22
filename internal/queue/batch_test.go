package queue_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"duikou/internal/kv"
	"duikou/internal/queue"
	"duikou/referral"
)

// op is one queue change of a relayed batch.
type op struct {
	upsert *queue.Entry
	remove string // ticket id
	ver    int
	h, d   string // the desk a removal names ("" when unknown)
	breach referral.BreachKind
	due    time.Time
	notice bool
}

func up(e queue.Entry, version int, dept, holder string) op {
	e.Version, e.DepartmentID, e.Holder = version, dept, holder
	return op{upsert: &e}
}

func TestABatchOfMixedChangesLandsExactlyAsAppliedOneByOne(t *testing.T) {
	bothServers(t, func(t *testing.T, conn *kv.Conn) {
		ctx := context.Background()
		now := base
		opt := queue.Options{Now: func() time.Time { return now }}
		t1, t2, t3 := waiting(1, cardio, referral.Routine, false, now, 50), waiting(2, neuro, referral.Urgent, false, now, 40), waiting(3, cardio, referral.Routine, false, now, 30)
		t4, t5, t6 := waiting(4, cardio, referral.Routine, false, now, 20), waiting(5, cardio, referral.Urgent, false, now, 10), waiting(6, cardio, referral.Emergency, true, now, 1)
		t4.HospitalID = hospB
		ops := []op{
			up(t1, 1, cardio, ""),
			up(t2, 1, neuro, ""),
			up(t1, 1, cardio, ""),                        // delivered twice
			up(t3, 2, cardio, "alice"),                   // claimed: alice's lease
			{remove: t1.ID, ver: 2, h: hospA, d: cardio}, // accepted
			up(t1, 1, cardio, ""),                        // late, older: the tombstone keeps it out
			{remove: t2.ID, ver: 1, breach: referral.ClaimBreach, due: t2.ClaimBy}, // escalated while queued
			{remove: t1.ID, ver: 2, breach: referral.ClaimBreach, due: t1.ClaimBy}, // escalated, but no longer queued
			up(t3, 3, cardio, ""),                       // released: the lease ends
			{remove: t2.ID, ver: 0, h: hospA, d: neuro}, // an older removal: t2 stays
			up(t1, 4, neuro, ""),                        // edited to another desk and sent again
			up(t4, 1, cardio, ""),
			{remove: t4.ID, ver: 2}, // a removal that names no desk
			up(t5, 1, cardio, ""),
			up(t5, 3, neuro, ""),                         // moved desks, its removal not seen here
			{remove: t5.ID, ver: 4, h: hospA, d: cardio}, // names the desk it was at before
			{remove: t3.ID, ver: -1},                     // a stale entry the database refused
			{remove: t1.ID, ver: 4, notice: true},
			up(t6, 2, cardio, ""),
		}
		one := queue.New(withPrefix(t, conn, conn.Prefix+"-one"), opt)
		batch := queue.New(withPrefix(t, conn, conn.Prefix+"-batch"), opt)
		oneEvents, batchEvents := listen(t, one), listen(t, batch)

		for _, o := range ops {
			var err error
			switch {
			case o.upsert != nil:
				_, err = one.Upsert(ctx, *o.upsert)
			case o.notice:
				err = one.PublishChange(ctx, hospA, queue.Notice{ID: o.remove, Version: o.ver, Status: referral.Submitted, At: now})
			case o.breach != "":
				_, err = one.MarkBreached(ctx, o.remove, o.breach, o.due)
			default:
				err = one.Remove(ctx, o.remove, o.ver)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		b := batch.NewBatch()
		for _, o := range ops {
			var err error
			switch {
			case o.upsert != nil:
				_, err = b.Upsert(*o.upsert)
			case o.notice:
				err = b.PublishChange(hospA, queue.Notice{ID: o.remove, Version: o.ver, Status: referral.Submitted, At: now})
			case o.breach != "":
				_, err = b.MarkBreached(o.remove, o.breach, o.due)
			default:
				_, err = b.Remove(o.remove, o.ver, o.h, o.d)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Exec(ctx); err != nil {
			t.Fatal(err)
		}

		if got, want := dump(t, conn, conn.Prefix+"-batch"), dump(t, conn, conn.Prefix+"-one"); !reflect.DeepEqual(got, want) {
			t.Fatalf("Redis after the batch differs from one by one\nbatch: %v\n  one: %v", got, want)
		}
		if got, want := batchEvents(), oneEvents(); !slices.Equal(got, want) {
			t.Fatalf("events of the batch differ from one by one\nbatch: %v\n  one: %v", got, want)
		}
		// And what that state is, as the desks see it.
		items, err := batch.List(ctx, hospA, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(items), []string{t6.ID, t2.ID, t1.ID}; !slices.Equal(got, want) {
			t.Fatalf("desk view %v, want %v", got, want)
		}
		if cardioQ, _ := batch.List(ctx, hospA, cardio, 10); !slices.Equal(ids(cardioQ), []string{t6.ID}) {
			t.Fatalf("cardiology keeps tickets that left it: %v", ids(cardioQ))
		}
		if items[1].Breached == nil || items[2].LeasedBy != "" {
			t.Fatalf("breach mark or lease wrong: %+v", items)
		}
		if b, _ := batch.List(ctx, hospB, "", 10); len(b) != 0 {
			t.Fatalf("a removal naming no desk left %v", ids(b))
		}
	})
}

// withPrefix opens another connection to conn's server with its own prefix.
func withPrefix(t *testing.T, conn *kv.Conn, prefix string) *kv.Conn {
	t.Helper()
	c, err := kv.Open(context.Background(), "redis://"+conn.Options().Addr+fmt.Sprintf("/%d", conn.Options().DB), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flush(t, c); c.Client.Close() })
	return c
}

// listen collects the events and notices of both hospitals; the function it
// returns waits a moment and lists them without their times.
func listen(t *testing.T, q *queue.Referrals) func() []string {
	t.Helper()
	ctx := context.Background()
	var chans []func() []string
	for _, h := range []string{hospA, hospB} {
		evs, stop, err := q.Subscribe(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		ns, stopN, err := q.SubscribeChanges(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stopN)
		// Each channel keeps its order; between channels there is none.
		chans = append(chans, func() []string {
			var out []string
			for {
				select {
				case ev := <-evs:
					out = append(out, fmt.Sprintf("%s %s %s v%d %s", h[len(h)-4:], ev.Type, ev.ID[:8], ev.Version, ev.DepartmentID[len(ev.DepartmentID)-2:]))
				case <-time.After(200 * time.Millisecond):
					return out
				}
			}
		}, func() []string {
			var out []string
			for {
				select {
				case n := <-ns:
					out = append(out, fmt.Sprintf("%s notice %s v%d", h[len(h)-4:], n.ID[:8], n.Version))
				case <-time.After(200 * time.Millisecond):
					return out
				}
			}
		})
	}
	return func() []string {
		var out []string
		for _, c := range chans {
			out = append(out, c()...)
		}
		return out
	}
}

// dump is every key under prefix with its content, the prefix cut off; a
// lease's expiry (from the server's clock) and a tombstone's time to live
// are left out.
func dump(t *testing.T, conn *kv.Conn, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := conn.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		name := strings.TrimPrefix(k, prefix)
		typ, err := conn.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v string
		switch typ {
		case "hash":
			m, err := conn.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			var fs []string
			for f, val := range m {
				if strings.HasSuffix(name, ":q:l") {
					val = val[:strings.LastIndexByte(val, '|')]
				}
				fs = append(fs, f+"="+val)
			}
			slices.Sort(fs)
			v = strings.Join(fs, " ")
		case "zset":
			zs, err := conn.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			v = fmt.Sprint(zs)
		case "set":
			ms, err := conn.SMembers(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(ms)
			v = strings.Join(ms, " ")
		default:
			if v, err = conn.Get(ctx, k).Result(); err != nil {
				t.Fatal(err)
			}
		}
		out[name] = typ + ": " + v
	}
	return out
}
