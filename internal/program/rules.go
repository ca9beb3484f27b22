package program

import (
	"fmt"
	"time"

	"duikou/internal/directory"
)

// The program's rules for dispatched doctors: at least senior attending
// (主治医师), at least one associate chief (副主任医师) or above per team, a
// posting of at least six months. A breach is not refused outright: the
// program office may accept it with a reason (a county short of an
// anaesthetist takes who is free), so each check returns warnings and the
// office's override is kept with the posting.

// Warning is one rule a posting does not meet. Field is the input at fault.
type Warning struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Warning codes.
const (
	WarnTitle    = "title_below_attending"
	WarnTeam     = "team_without_associate_chief"
	WarnDuration = "posting_shorter_than_six_months"
)

// MinMonths is the shortest posting the program asks for.
const MinMonths = 6

// Grade of a title on the common ladder: 3 senior (正高), 2 associate senior
// (副高), 1 intermediate (中级: 主治医师, 主管护师 …), 0 below or unknown.
func titleGrade(t directory.Title) int {
	switch t {
	case "chief_physician", "chief_nurse", "chief_pharmacist", "chief_technician":
		return 3
	case "associate_chief_physician", "associate_chief_nurse", "associate_chief_pharmacist", "associate_chief_technician":
		return 2
	case "attending_physician", "nurse_in_charge", "pharmacist_in_charge", "technician_in_charge":
		return 1
	}
	return 0
}

// CheckTitle warns when a doctor's title is below attending (主治医师) or
// its equivalent on another ladder.
func CheckTitle(t directory.Title) []Warning {
	if titleGrade(t) >= 1 {
		return nil
	}
	label := t.Label()
	if label == "" {
		label = "无职称"
	}
	return []Warning{{WarnTitle, "staff_id", fmt.Sprintf("title %s is below 主治医师 (attending)", label)}}
}

// CheckTeam warns when no member of a team, the new posting included, holds
// associate chief (副主任医师) or above.
func CheckTeam(team string, titles []directory.Title) []Warning {
	for _, t := range titles {
		if titleGrade(t) >= 2 {
			return nil
		}
	}
	return []Warning{{WarnTeam, "team", fmt.Sprintf("team %q has no 副主任医师 (associate chief) or above", team)}}
}

// CheckDuration warns when a posting from startsOn to endsOn (both days
// included) is shorter than MinMonths calendar months: 1 January to 30 June
// is six months, to 29 June is not.
func CheckDuration(startsOn, endsOn string) []Warning {
	start, ok1 := ParseDay(startsOn)
	end, ok2 := ParseDay(endsOn)
	if !ok1 || !ok2 {
		return nil // malformed days are field errors, not warnings
	}
	if end.Before(addMonths(start, MinMonths).AddDate(0, 0, -1)) {
		return []Warning{{WarnDuration, "ends_on", fmt.Sprintf("the posting lasts less than %d months", MinMonths)}}
	}
	return nil
}

// PostingWarnings runs every rule on a posting whose doctor holds title,
// joining a team whose other members (overlapping its period) hold
// teamTitles.
func PostingWarnings(title directory.Title, team string, teamTitles []directory.Title, startsOn, endsOn string) []Warning {
	var w []Warning
	w = append(w, CheckTitle(title)...)
	w = append(w, CheckTeam(team, append(append([]directory.Title{}, teamTitles...), title))...)
	w = append(w, CheckDuration(startsOn, endsOn)...)
	return w
}

// addMonths moves t by n calendar months, keeping the day of the month but
// never past the target month's last day (31 August + 6 months is 28
// February, where time.AddDate would roll into March).
func addMonths(t time.Time, n int) time.Time {
	first := time.Date(t.Year(), t.Month()+time.Month(n), 1, 0, 0, 0, 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(t.Day(), last)-1)
}
