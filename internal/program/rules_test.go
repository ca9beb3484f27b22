package program_test

import (
	"slices"
	"testing"

	"duikou/internal/directory"
	"duikou/internal/program"
)

func codes(ws []program.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

func TestDispatchedDoctorsAreAtLeastAttending(t *testing.T) {
	for _, tc := range []struct {
		title directory.Title
		warn  bool
	}{
		{"chief_physician", false},
		{"associate_chief_physician", false},
		{"attending_physician", false},
		{"nurse_in_charge", false}, // the nurses' intermediate grade
		{"resident_physician", true},
		{"nurse", true},
		{"", true},
		{"made_up", true},
	} {
		got := program.CheckTitle(tc.title)
		if (len(got) > 0) != tc.warn {
			t.Errorf("title %q: warnings %v, want warning %v", tc.title, got, tc.warn)
		}
		if tc.warn && (got[0].Code != program.WarnTitle || got[0].Field != "staff_id") {
			t.Errorf("title %q: %+v", tc.title, got[0])
		}
	}
}

func TestEachTeamHasAnAssociateChiefOrAbove(t *testing.T) {
	for _, tc := range []struct {
		name   string
		titles []directory.Title
		warn   bool
	}{
		{"an associate chief among attendings", []directory.Title{"attending_physician", "associate_chief_physician"}, false},
		{"a chief alone", []directory.Title{"chief_physician"}, false},
		{"an associate chief nurse counts as 副高", []directory.Title{"attending_physician", "associate_chief_nurse"}, false},
		{"attendings only", []directory.Title{"attending_physician", "attending_physician"}, true},
		{"nobody yet", nil, true},
	} {
		got := program.CheckTeam("第一批", tc.titles)
		if (len(got) > 0) != tc.warn {
			t.Errorf("%s: warnings %v, want warning %v", tc.name, got, tc.warn)
		}
	}
}

func TestPostingsLastAtLeastSixMonths(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		warn     bool
	}{
		{"2026-01-01", "2026-06-30", false}, // six whole months
		{"2026-01-01", "2026-06-29", true},
		{"2026-01-15", "2026-07-14", false},
		{"2026-01-15", "2026-07-13", true},
		{"2026-08-31", "2027-02-27", false}, // the end of February is the end of the sixth month
		{"2026-03-01", "2027-02-28", false},
		{"2026-03-01", "2026-03-31", true},
		{"bad", "2026-03-31", false}, // a malformed day is a field error elsewhere
	} {
		got := program.CheckDuration(tc.from, tc.to)
		if (len(got) > 0) != tc.warn {
			t.Errorf("%s to %s: warnings %v, want warning %v", tc.from, tc.to, got, tc.warn)
		}
	}
}

func TestPostingWarningsCollectEveryRule(t *testing.T) {
	got := codes(program.PostingWarnings("resident_physician", "第二批", []directory.Title{"attending_physician"}, "2026-01-01", "2026-02-01"))
	want := []string{program.WarnTitle, program.WarnTeam, program.WarnDuration}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := program.PostingWarnings("associate_chief_physician", "第二批", nil, "2026-01-01", "2026-12-31"); len(got) != 0 {
		t.Errorf("an associate chief for a year: %v", got)
	}
	// The newcomer completes the team: no team warning for the attending
	// already there.
	if got := codes(program.PostingWarnings("attending_physician", "第二批", []directory.Title{"chief_physician"}, "2026-01-01", "2026-12-31")); len(got) != 0 {
		t.Errorf("an attending joining a chief: %v", got)
	}
}
