package audit

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
)

// maxBreaks bounds the report: a log damaged everywhere is reported by its
// first breaks and a flag, not by a response as large as the log.
const maxBreaks = 1000

// Report is the outcome of Verify.
type Report struct {
	OK              bool    `json:"ok"`
	RowsChecked     int64   `json:"rows_checked"`
	Chains          int     `json:"chains"`
	Breaks          []Break `json:"breaks"`
	BreaksTruncated bool    `json:"breaks_truncated,omitempty"`
}

// Break is one place where a chain does not hold. Seq is the row's number
// in the table (0 when the break is a missing row past the last one).
type Break struct {
	Chain    int    `json:"chain"`
	ChainSeq int64  `json:"chain_seq"`
	Seq      int64  `json:"seq"`
	Reason   string `json:"reason"`
}

func (r *Report) add(b Break) {
	if len(r.Breaks) >= maxBreaks {
		r.BreaksTruncated = true
		return
	}
	r.Breaks = append(r.Breaks, b)
}

// chainState is what Verify remembers of the chain it is walking.
type chainState struct {
	chain  int
	next   int64  // the chain_seq the next row must have
	prev   []byte // the stored hash of the previous row
	last   Entry  // the last row seen
	active bool
}

// Verify recomputes every row's hash in chain order and checks that each
// chain numbers its rows 1, 2, 3… without gaps, that each row's prev_hash is
// the hash of the row before (the genesis hash for the first), and that the
// head recorded for each chain matches its last row, which reveals rows
// deleted from the end. Rows are streamed, never all held in memory.
//
// Verify may run while entries are being appended: heads are read before the
// rows, so every head it checks against is reached by the walk, and rows
// found past a head are checked against the heads read again afterwards.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	rep := Report{Breaks: []Break{}}
	heads, err := l.headMap(ctx)
	if err != nil {
		return rep, err
	}
	seen := map[int]bool{}
	var pastHead []Entry // last rows of chains that ran past the head read first
	var cur chainState

	finish := func(c chainState) {
		if !c.active {
			return
		}
		h, ok := heads[c.chain]
		switch {
		case !ok || c.last.ChainSeq > h.ChainSeq:
			pastHead = append(pastHead, c.last)
		case c.last.ChainSeq < h.ChainSeq:
			rep.add(Break{Chain: c.chain, ChainSeq: c.last.ChainSeq + 1,
				Reason: fmt.Sprintf("rows %d to %d are missing from the end of the chain (its head records %d rows)",
					c.last.ChainSeq+1, h.ChainSeq, h.ChainSeq)})
		}
	}

	err = l.store.Walk(ctx, func(e Entry) error {
		if !cur.active || e.Chain != cur.chain {
			finish(cur)
			cur = chainState{chain: e.Chain, next: 1, prev: GenesisHash(), active: true}
			seen[e.Chain] = true
			if e.Chain < 0 || e.Chain >= Chains {
				rep.add(Break{Chain: e.Chain, ChainSeq: e.ChainSeq, Seq: e.Seq,
					Reason: fmt.Sprintf("chain %d is not one of the log's chains 0 to %d", e.Chain, Chains-1)})
			}
		}
		rep.RowsChecked++
		if reason := checkRow(&cur, e, heads); reason != "" {
			rep.add(Break{Chain: e.Chain, ChainSeq: e.ChainSeq, Seq: e.Seq, Reason: reason})
		}
		cur.prev, cur.next, cur.last = e.Hash, e.ChainSeq+1, e
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	finish(cur)

	for chain, h := range heads {
		if !seen[chain] && h.ChainSeq > 0 {
			rep.add(Break{Chain: chain, ChainSeq: 1,
				Reason: fmt.Sprintf("the chain has no rows but its head records %d", h.ChainSeq)})
		}
		seen[chain] = true
	}

	if len(pastHead) > 0 {
		// Rows appended while walking are legitimate only if their head has
		// caught up by now (a row and its head commit together).
		later, err := l.headMap(ctx)
		if err != nil {
			return rep, err
		}
		for _, last := range pastHead {
			h, ok := later[last.Chain]
			switch {
			case !ok:
				rep.add(Break{Chain: last.Chain, ChainSeq: last.ChainSeq, Seq: last.Seq,
					Reason: "the chain has rows but no head"})
			case last.ChainSeq > h.ChainSeq:
				rep.add(Break{Chain: last.Chain, ChainSeq: h.ChainSeq + 1,
					Reason: fmt.Sprintf("rows %d to %d lie past the chain's head (%d): appended outside the log",
						h.ChainSeq+1, last.ChainSeq, h.ChainSeq)})
			case last.ChainSeq == h.ChainSeq && !bytes.Equal(last.Hash, h.Hash):
				rep.add(Break{Chain: last.Chain, ChainSeq: last.ChainSeq, Seq: last.Seq,
					Reason: "the last row's hash differs from the chain's head"})
			}
		}
	}

	sort.SliceStable(rep.Breaks, func(i, j int) bool {
		a, b := rep.Breaks[i], rep.Breaks[j]
		if a.Chain != b.Chain {
			return a.Chain < b.Chain
		}
		return a.ChainSeq < b.ChainSeq
	})
	rep.Chains = len(seen)
	rep.OK = len(rep.Breaks) == 0 && !rep.BreaksTruncated
	return rep, nil
}

// checkRow returns why e does not continue the chain, or "".
func checkRow(c *chainState, e Entry, heads map[int]Head) string {
	var reasons []string
	switch {
	case e.ChainSeq == c.next+1:
		reasons = append(reasons, fmt.Sprintf("row %d of the chain is missing", c.next))
	case e.ChainSeq != c.next:
		reasons = append(reasons, fmt.Sprintf("rows %d to %d of the chain are missing", c.next, e.ChainSeq-1))
	case !bytes.Equal(e.PrevHash, c.prev) && e.ChainSeq == 1:
		reasons = append(reasons, "prev_hash of the first row is not the genesis hash")
	case !bytes.Equal(e.PrevHash, c.prev):
		reasons = append(reasons, fmt.Sprintf("prev_hash does not match the hash of row %d", e.ChainSeq-1))
	}
	if !bytes.Equal(ChainHash(e.PrevHash, e), e.Hash) {
		reasons = append(reasons, "hash does not match the row's content: the row was altered")
	} else if h, ok := heads[e.Chain]; ok && h.ChainSeq == e.ChainSeq && !bytes.Equal(h.Hash, e.Hash) {
		reasons = append(reasons, "hash differs from the one recorded in the chain's head")
	}
	return strings.Join(reasons, "; ")
}

func (l *Log) headMap(ctx context.Context) (map[int]Head, error) {
	hs, err := l.store.Heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read chain heads: %w", err)
	}
	m := make(map[int]Head, len(hs))
	for _, h := range hs {
		m[h.Chain] = h
	}
	return m, nil
}
