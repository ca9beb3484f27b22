package directory

import (
	"testing"
	"time"
)

func TestZonesLoadEachZoneOnceAndFallBackToChina(t *testing.T) {
	var z Zones
	at := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC) // 01:00 the next day in China
	for _, c := range []struct{ name, day string }{
		{"Asia/Shanghai", "2026-12-02"},
		{"", "2026-12-02"},
		{"Not/AZone", "2026-12-02"},
		{"Asia/Urumqi", "2026-12-01"}, // UTC+6
	} {
		if got := at.In(z.Location(c.name)).Format(time.DateOnly); got != c.day {
			t.Errorf("%q: day %s, want %s", c.name, got, c.day)
		}
	}
	if z.Location("Asia/Urumqi") != z.Location("Asia/Urumqi") {
		t.Error("a zone was loaded twice")
	}
}
