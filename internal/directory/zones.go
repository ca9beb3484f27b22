package directory

import (
	"sync"
	"time"
)

// Zones loads hospitals' time zones once each: time.LoadLocation reads and
// parses the zone file on every call, and the reach of every request and the
// route of every referral ask for a hospital's day. The zero value is ready.
type Zones struct {
	mu    sync.Mutex
	known map[string]*time.Location
}

// Location returns the named zone, or DefaultTimeZone when the name is
// empty or unknown.
func (z *Zones) Location(name string) *time.Location {
	if name == "" {
		name = DefaultTimeZone
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if loc, ok := z.known[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		if loc, err = time.LoadLocation(DefaultTimeZone); err != nil {
			loc = time.FixedZone("CST", 8*60*60) // China has one zone and no daylight saving
		}
	}
	if z.known == nil {
		z.known = map[string]*time.Location{}
	}
	z.known[name] = loc
	return loc
}
