package referrals

import (
	"context"
	"sync"
)

// numberBlock is how many ticket numbers an instance takes from the day's
// counter at once on PostgreSQL. Every taking is a statement and a commit of
// its own (a round trip and a WAL flush) on the one row all instances
// update, so a block of 50 pays that once per 50 submissions. What is not
// handed out when the instance stops or the day ends is lost, so a larger
// block would only widen the gaps (and how far apart instances' numbers run)
// for little more gain; a few restarts a day lose a few hundred of the day's
// 999,999 six-digit numbers.
const numberBlock = 50

// numberBlocks hands out the day's ticket numbers from a block this instance
// took from the counter, so that only every numberBlock-th submission
// touches the counter row. A block is taken in a statement of its own that
// commits at once, whatever becomes of the ticket's transaction, so no number
// is ever handed out twice: a ticket whose transaction fails, a block left
// over when the day changes or the instance stops, leave gaps. Instances
// sharing one database each take their own blocks: their numbers are unique
// but, across instances, not in the order the tickets were submitted.
type numberBlocks struct {
	// take counts n more tickets on day and returns the last number of the
	// run; it must commit on its own (see sqldb.Detached).
	take func(ctx context.Context, day string, n int64) (int64, error)

	mu        sync.Mutex
	day       string // the day of the block
	next, end int64  // the next number to hand out and the block's last; spent once next > end
}

// number returns the next number of day. The lock is held while a block is
// taken, so the instance's other submissions wait for that block instead of
// each taking one of their own.
func (b *numberBlocks) number(ctx context.Context, day string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if day != b.day || b.next > b.end {
		end, err := b.take(ctx, day, numberBlock)
		if err != nil {
			return 0, err
		}
		b.day, b.next, b.end = day, end-numberBlock+1, end
	}
	n := b.next
	b.next++
	return n, nil
}
