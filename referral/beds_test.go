package referral

import (
	"errors"
	"strings"
	"testing"

	"duikou/internal/apperr"
)

// A bed goes back to the pool exactly when the patient will not come, or has
// left the referral path; never on the way in.
func TestReleasesBedOnTheEndsThatFreeTheBed(t *testing.T) {
	frees := map[Status]bool{Cancelled: true, NoShow: true, Completed: true}
	for _, s := range Statuses {
		if got := ReleasesBed(s); got != frees[s] {
			t.Errorf("ReleasesBed(%s) = %v, want %v", s, got, frees[s])
		}
	}
}

func TestCheckPoolSize(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name  string
		size  *int
		inUse int
		want  string // part of the size field's message; "" for accepted
	}{
		{"zero beds is a valid pool", n(0), 0, ""},
		{"the upper bound", n(MaxBedPoolSize), 0, ""},
		{"exactly the beds in use", n(3), 3, ""},
		{"missing", nil, 0, "is required"},
		{"negative", n(-1), 0, "from 0 to 1000"},
		{"above the bound", n(MaxBedPoolSize + 1), 0, "from 0 to 1000"},
		{"below the beds in use", n(2), 3, "below the 3 beds in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckPoolSize(tc.size, tc.inUse)
			if tc.want == "" {
				if err != nil || got != *tc.size {
					t.Fatalf("got %d %v, want %d accepted", got, err, *tc.size)
				}
				return
			}
			var v apperr.Invalid
			if !errors.As(err, &v) || len(v) != 1 || v[0].Field != "size" || !strings.Contains(v[0].Message, tc.want) {
				t.Fatalf("got %v, want a size error saying %q", err, tc.want)
			}
		})
	}
}

func TestNoBedFreeSaysWhy(t *testing.T) {
	tests := []struct {
		pool BedPool
		says string
	}{
		{BedPool{}, "no reserved green-channel bed pool"},
		{BedPool{Size: 0, Version: 2}, "no reserved green-channel bed pool"},
		{BedPool{Size: 3, InUse: 3, Version: 1}, "is full (3 of 3 beds in use)"},
	}
	for _, tc := range tests {
		err := NoBedFree(tc.pool)
		if !errors.Is(err, apperr.ErrConflict) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("NoBedFree(%+v) = %v, want a conflict saying %q", tc.pool, err, tc.says)
		}
	}
}
