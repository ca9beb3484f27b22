package referral

import (
	"context"
	"errors"
	"slices"
	"testing"

	"duikou/internal/apperr"
)

// routeMap is a small province: two county hospitals, each with its tertiary
// partner and township centres; one tertiary hospital paired with nobody
// here; one township paired directly with a tertiary hospital.
type routeMap struct {
	tiers map[string]string
	pairs [][2]string // active pairings: supporting, recipient
	fail  string      // a hospital whose lookup fails, to test error passing
}

var errLookup = errors.New("database is down")

func (m routeMap) Tier(_ context.Context, id string) (string, error) {
	if id == m.fail {
		return "", errLookup
	}
	t, ok := m.tiers[id]
	if !ok {
		return "", apperr.ErrNotFound
	}
	return t, nil
}

func (m routeMap) Partners(_ context.Context, id string) ([]string, error) {
	if id == m.fail {
		return nil, errLookup
	}
	var out []string
	for _, p := range m.pairs {
		switch id {
		case p[0]:
			out = append(out, p[1])
		case p[1]:
			out = append(out, p[0])
		}
	}
	return out, nil
}

var province = routeMap{
	tiers: map[string]string{
		"T1": TierTertiary, "T2": TierTertiary, "T3": TierTertiary,
		"C1": TierSecondary, "C2": TierSecondary,
		"W1": TierTownship, "W2": TierTownship, "W3": TierTownship, "W4": TierTownship,
		"HA": "authority",
	},
	pairs: [][2]string{
		{"T1", "C1"}, {"C1", "W1"}, {"C1", "W2"},
		{"T3", "C2"}, {"C2", "W3"},
		{"T2", "W4"},
	},
}

func TestRoutes(t *testing.T) {
	cases := []struct {
		name     string
		dir      Direction
		from, to string
		home     string
		ok       bool
	}{
		{"township up to its county hospital", Up, "W1", "C1", "W1", true},
		{"township up to its county hospital's tertiary partner", Up, "W1", "T1", "W1", true},
		{"township up to an unrelated tertiary hospital", Up, "W1", "T2", "W1", false},
		{"township up to another county's tertiary partner", Up, "W1", "T3", "W1", false},
		{"township up to another county hospital", Up, "W1", "C2", "W1", false},
		{"township up to a neighbouring township", Up, "W1", "W2", "W1", false},
		{"township up to a tertiary hospital it is paired with directly", Up, "W4", "T2", "W4", true},
		{"county up to its tertiary partner", Up, "C1", "T1", "C1", true},
		{"county up to a tertiary hospital it is not paired with", Up, "C1", "T2", "C1", false},
		{"county 'up' to its own township", Up, "C1", "W1", "C1", false},
		{"tertiary up to anywhere", Up, "T1", "T2", "T1", false},
		{"up to the health authority", Up, "C1", "HA", "C1", false},
		{"up to an unknown hospital", Up, "C1", "T9", "C1", false},
		{"up to itself", Up, "C1", "C1", "C1", false},

		{"down to the patient's home county hospital", Down, "T1", "C1", "C1", true},
		{"down to a township paired with the home county", Down, "T1", "W1", "C1", true},
		{"down to the home township's county hospital", Down, "T1", "C1", "W1", true},
		{"down to the patient's own township", Down, "T1", "W2", "W2", true},
		{"down to another township of the home county", Down, "T1", "W1", "W2", true},
		{"down from the county to its township", Down, "C1", "W1", "C1", true},
		{"down to another county hospital", Down, "T1", "C2", "C1", false},
		{"down to a township of another county", Down, "T1", "W3", "C1", false},
		{"down to a township paired only with a tertiary hospital", Down, "T2", "W4", "C1", false},
		{"'down' from a county to a tertiary hospital", Down, "C1", "T1", "C1", false},
		{"down for a patient at home in the tertiary city", Down, "T1", "C1", "T1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckRoute(context.Background(), province, c.dir, c.from, c.to, c.home)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var inv apperr.Invalid
			if !errors.As(err, &inv) || len(inv) != 1 || inv[0].Field != "receiving_hospital_id" {
				t.Fatalf("got %v, want a refusal on receiving_hospital_id", err)
			}
		})
	}
}

func TestRouteLookupFailuresAreNotBlamedOnTheCaller(t *testing.T) {
	broken := province
	broken.fail = "C1"
	for _, c := range []struct {
		dir            Direction
		from, to, home string
	}{
		{Up, "W1", "T1", "W1"}, // the county's partners cannot be read
		{Down, "T1", "W1", "C1"},
		{Up, "C1", "T1", "C1"},
	} {
		err := CheckRoute(context.Background(), broken, c.dir, c.from, c.to, c.home)
		if !errors.Is(err, errLookup) || errors.As(err, new(apperr.Invalid)) {
			t.Errorf("%s %s→%s: %v, want the lookup failure passed on", c.dir, c.from, c.to, err)
		}
	}
	if err := CheckRoute(context.Background(), province, Down, "T1", "C1", ""); err == nil ||
		errors.As(err, new(apperr.Invalid)) {
		t.Errorf("down-referral without a home hospital: %v, want an internal error", err)
	}
}

// The fake must agree with itself, or the route tests prove nothing.
func TestRouteMapIsSymmetric(t *testing.T) {
	for _, p := range province.pairs {
		a, _ := province.Partners(context.Background(), p[0])
		b, _ := province.Partners(context.Background(), p[1])
		if !slices.Contains(a, p[1]) || !slices.Contains(b, p[0]) {
			t.Errorf("pairing %v is not seen from both ends", p)
		}
	}
}
