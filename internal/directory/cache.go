package directory

import (
	"context"
	"slices"
	"sync"
	"time"

	"duikou/internal/sqldb"
)

// ReadCache is a Store that keeps, for a short time on this instance, what
// every request and every referral read of the directory: a hospital's row,
// its pairings and an authority's province. Authentication computes the
// caller's reach from them on each request, and each referral's route
// checks them again, a handful of round trips per request for data that
// changes a few times a year.
//
// Staleness is bounded: an entry is used for at most the TTL after it was
// read, so a pairing ended or a hospital changed through another instance
// takes effect here within the TTL; changes made through this instance's
// directory service (wired with Forgetting) empty the cache at once and
// again when they commit. Only the hot reads are cached; every other method
// goes straight to the store. Reads that decide a change of the directory
// itself must not use it (the directory service reads its own store).
type ReadCache struct {
	Store
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	hospitals map[string]entry[Hospital]
	pairings  map[string]entry[[]Pairing]
	provinces map[string]entry[[]string]
}

type entry[T any] struct {
	v       T
	expires time.Time
}

// maxEntries bounds each map; a directory is a province's hospitals.
const maxEntries = 10_000

// NewReadCache caches st's hospital and pairing reads for ttl.
func NewReadCache(st Store, ttl time.Duration) *ReadCache {
	c := &ReadCache{Store: st, ttl: ttl, now: time.Now}
	c.Forget()
	return c
}

// Forget drops every cached entry.
func (c *ReadCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hospitals = map[string]entry[Hospital]{}
	c.pairings = map[string]entry[[]Pairing]{}
	c.provinces = map[string]entry[[]string]{}
}

// cached returns m[key] while fresh, or reads it with read and keeps it.
// Errors (not found included) are never kept.
func cached[T any](c *ReadCache, m *map[string]entry[T], key string, read func() (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := (*m)[key]
	c.mu.Unlock()
	if ok && c.now().Before(e.expires) {
		return e.v, nil
	}
	at := c.now()
	v, err := read()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if len(*m) >= maxEntries {
		*m = map[string]entry[T]{}
	}
	(*m)[key] = entry[T]{v: v, expires: at.Add(c.ttl)}
	c.mu.Unlock()
	return v, nil
}

// Hospital returns the hospital's row, at most the TTL old.
func (c *ReadCache) Hospital(ctx context.Context, id string) (Hospital, error) {
	return cached(c, &c.hospitals, id, func() (Hospital, error) { return c.Store.Hospital(ctx, id) })
}

// PairingsOf returns the hospital's pairings, at most the TTL old.
func (c *ReadCache) PairingsOf(ctx context.Context, hospitalID string) ([]Pairing, error) {
	ps, err := cached(c, &c.pairings, hospitalID, func() ([]Pairing, error) { return c.Store.PairingsOf(ctx, hospitalID) })
	return slices.Clone(ps), err
}

// HospitalIDsInProvince returns the province's hospitals, at most the TTL
// old.
func (c *ReadCache) HospitalIDsInProvince(ctx context.Context, province string) ([]string, error) {
	ids, err := cached(c, &c.provinces, province, func() ([]string, error) { return c.Store.HospitalIDsInProvince(ctx, province) })
	return slices.Clone(ids), err
}

// Forgetting wraps the store the directory service writes through, so that
// each change of hospitals or pairings empties the cache: at once, and again
// once the change committed (a read in between may have kept the old row).
func (c *ReadCache) Forgetting(st Store) Store { return forgetting{Store: st, c: c} }

type forgetting struct {
	Store
	c *ReadCache
}

func (f forgetting) forget(ctx context.Context) {
	f.c.Forget()
	sqldb.AfterCommit(ctx, f.c.Forget)
}

func (f forgetting) CreateHospital(ctx context.Context, h Hospital) error {
	f.forget(ctx)
	return f.Store.CreateHospital(ctx, h)
}

func (f forgetting) UpdateHospital(ctx context.Context, h Hospital) (Hospital, error) {
	f.forget(ctx)
	return f.Store.UpdateHospital(ctx, h)
}

func (f forgetting) CreatePairing(ctx context.Context, p Pairing) error {
	f.forget(ctx)
	return f.Store.CreatePairing(ctx, p)
}

func (f forgetting) UpdatePairing(ctx context.Context, p Pairing) (Pairing, error) {
	f.forget(ctx)
	return f.Store.UpdatePairing(ctx, p)
}
