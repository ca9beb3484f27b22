package directory

import (
	"context"
	"testing"
	"time"
)

// countingStore counts the reads that reach the database.
type countingStore struct {
	Store
	reads    int
	pairings []Pairing
}

func (s *countingStore) Hospital(_ context.Context, id string) (Hospital, error) {
	s.reads++
	return Hospital{ID: id}, nil
}

func (s *countingStore) PairingsOf(_ context.Context, hospitalID string) ([]Pairing, error) {
	s.reads++
	return append([]Pairing(nil), s.pairings...), nil
}

func (s *countingStore) UpdatePairing(_ context.Context, p Pairing) (Pairing, error) {
	s.pairings = []Pairing{p}
	return p, nil
}

func TestReadCacheServesHospitalsAndPairingsForAtMostItsTTLAndForgetsOnChanges(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{pairings: []Pairing{{ID: "p1", Status: "active"}}}
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	c := NewReadCache(st, 5*time.Second)
	c.now = func() time.Time { return now }
	writer := c.Forgetting(st)

	steps := []struct {
		name      string
		before    func()
		wantReads int // reads that reached the store so far
		wantPair  string
	}{
		{"first read goes to the store", nil, 2, "active"},
		{"within the TTL the cache answers", func() { now = now.Add(4 * time.Second) }, 2, "active"},
		{"another instance's change is seen once the TTL has passed", func() {
			st.pairings = []Pairing{{ID: "p1", Status: "ended"}}
			now = now.Add(2 * time.Second)
		}, 4, "ended"},
		{"a change through this instance is seen at once", func() {
			if _, err := writer.UpdatePairing(ctx, Pairing{ID: "p1", Status: "active"}); err != nil {
				t.Fatal(err)
			}
		}, 6, "active"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		if _, err := c.Hospital(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		ps, err := c.PairingsOf(ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if st.reads != s.wantReads || len(ps) != 1 || string(ps[0].Status) != s.wantPair {
			t.Fatalf("%s: %d reads, pairings %+v; want %d reads and a pairing %s", s.name, st.reads, ps, s.wantReads, s.wantPair)
		}
		ps[0].Status = "mutated by a caller"
	}
}
