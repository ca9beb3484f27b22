package consult

import (
	"cmp"
	"slices"
	"time"
)

// Presence is one connection of one user to a session: joined, and left
// (nil while connected). A dropped network gives several for one person.
type Presence struct {
	SessionID  string     `json:"session_id"`
	UserID     string     `json:"user_id"`
	HospitalID string     `json:"hospital_id"`
	JoinedAt   time.Time  `json:"joined_at"`
	LeftAt     *time.Time `json:"left_at"`
}

// Attendance is one person's attendance of a session, from all their
// connections.
type Attendance struct {
	UserID      string        `json:"user_id"`
	HospitalID  string        `json:"hospital_id"`
	FirstJoined time.Time     `json:"first_joined"`
	LastLeft    time.Time     `json:"last_left"`
	Duration    time.Duration `json:"duration"`
	Periods     int           `json:"periods"` // stretches of presence after merging reconnects
}

// ReconnectGrace is the gap a reconnect may leave and still count as
// present: a video client that drops and rejoins within it never left.
const ReconnectGrace = time.Minute

// MergeAttendance turns connections into attendance, one line per user and
// hospital, ordered by hospital then user. Each connection is clipped to
// [from, until] (the live session; a connection still open runs to until);
// overlapping connections (two devices) count once, and gaps of at most grace
// are bridged, so reconnects after a dropped line neither double-count nor
// split a person's presence. Connections entirely outside the window are
// dropped, and a person with none left is not listed.
func MergeAttendance(ps []Presence, from, until time.Time, grace time.Duration) []Attendance {
	type key struct{ hospital, user string }
	type span struct{ a, b time.Time }
	spans := map[key][]span{}
	for _, p := range ps {
		a, b := p.JoinedAt, until
		if p.LeftAt != nil {
			b = *p.LeftAt
		}
		if a.Before(from) {
			a = from
		}
		if b.After(until) {
			b = until
		}
		if !b.After(a) {
			continue
		}
		k := key{p.HospitalID, p.UserID}
		spans[k] = append(spans[k], span{a, b})
	}
	out := make([]Attendance, 0, len(spans))
	for k, ss := range spans {
		slices.SortFunc(ss, func(x, y span) int { return x.a.Compare(y.a) })
		att := Attendance{UserID: k.user, HospitalID: k.hospital, FirstJoined: ss[0].a}
		cur := ss[0]
		flush := func() {
			att.Duration += cur.b.Sub(cur.a)
			att.Periods++
			if cur.b.After(att.LastLeft) {
				att.LastLeft = cur.b
			}
		}
		for _, s := range ss[1:] {
			if !s.a.After(cur.b.Add(grace)) {
				if s.b.After(cur.b) {
					cur.b = s.b
				}
				continue
			}
			flush()
			cur = s
		}
		flush()
		out = append(out, att)
	}
	slices.SortFunc(out, func(x, y Attendance) int {
		return cmp.Or(cmp.Compare(x.HospitalID, y.HospitalID), cmp.Compare(x.UserID, y.UserID))
	})
	return out
}

// HospitalAttendance sums attendance per hospital: how many people took part
// and their total time, as the program's teaching-round figures count them.
type HospitalAttendance struct {
	HospitalID string        `json:"hospital_id"`
	People     int           `json:"people"`
	Total      time.Duration `json:"total"`
}

// ByHospital sums attendance lines per hospital, ordered by hospital.
func ByHospital(as []Attendance) []HospitalAttendance {
	var out []HospitalAttendance
	for _, a := range as {
		i := slices.IndexFunc(out, func(h HospitalAttendance) bool { return h.HospitalID == a.HospitalID })
		if i < 0 {
			out = append(out, HospitalAttendance{HospitalID: a.HospitalID})
			i = len(out) - 1
		}
		out[i].People++
		out[i].Total += a.Duration
	}
	slices.SortFunc(out, func(x, y HospitalAttendance) int { return cmp.Compare(x.HospitalID, y.HospitalID) })
	return out
}
