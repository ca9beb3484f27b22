package consult

import (
	"reflect"
	"testing"
	"time"
)

func TestMergeAttendance(t *testing.T) {
	start := t0
	end := t0.Add(60 * time.Minute)
	m := func(n int) time.Time { return start.Add(time.Duration(n) * time.Minute) }
	left := func(n int) *time.Time { x := m(n); return &x }
	const (
		alice = "0194f5c2-0000-7000-8000-00000000aa01"
		bob   = "0194f5c2-0000-7000-8000-00000000bb01"
	)
	cases := []struct {
		name string
		in   []Presence
		want []Attendance
	}{
		{"one connection", []Presence{{UserID: alice, HospitalID: countyID, JoinedAt: m(5), LeftAt: left(35)}},
			[]Attendance{{alice, countyID, m(5), m(35), 30 * time.Minute, 1}}},
		{"a reconnect within the grace is one stretch, the gap counted", []Presence{
			{UserID: alice, HospitalID: countyID, JoinedAt: m(0), LeftAt: left(20)},
			{UserID: alice, HospitalID: countyID, JoinedAt: m(20).Add(30 * time.Second), LeftAt: left(40)},
		}, []Attendance{{alice, countyID, m(0), m(40), 40 * time.Minute, 1}}},
		{"a longer absence is two stretches, the gap not counted", []Presence{
			{UserID: alice, HospitalID: countyID, JoinedAt: m(30), LeftAt: left(50)},
			{UserID: alice, HospitalID: countyID, JoinedAt: m(0), LeftAt: left(10)},
		}, []Attendance{{alice, countyID, m(0), m(50), 30 * time.Minute, 2}}},
		{"two devices at once count once", []Presence{
			{UserID: alice, HospitalID: countyID, JoinedAt: m(0), LeftAt: left(30)},
			{UserID: alice, HospitalID: countyID, JoinedAt: m(10), LeftAt: left(20)},
			{UserID: alice, HospitalID: countyID, JoinedAt: m(25), LeftAt: left(45)},
		}, []Attendance{{alice, countyID, m(0), m(45), 45 * time.Minute, 1}}},
		{"time before the start and after the end does not count; an open connection runs to the end", []Presence{
			{UserID: bob, HospitalID: guestID, JoinedAt: m(-15), LeftAt: left(10)},
			{UserID: alice, HospitalID: countyID, JoinedAt: m(50)},
		}, []Attendance{
			{alice, countyID, m(50), m(60), 10 * time.Minute, 1},
			{bob, guestID, m(0), m(10), 10 * time.Minute, 1},
		}},
		{"a connection wholly outside the session is dropped", []Presence{
			{UserID: bob, HospitalID: guestID, JoinedAt: m(-30), LeftAt: left(-5)},
			{UserID: alice, HospitalID: countyID, JoinedAt: m(61), LeftAt: left(70)},
		}, []Attendance{}},
		{"one person for two hospitals is two lines", []Presence{
			{UserID: alice, HospitalID: countyID, JoinedAt: m(0), LeftAt: left(10)},
			{UserID: alice, HospitalID: guestID, JoinedAt: m(20), LeftAt: left(25)},
		}, []Attendance{
			{alice, countyID, m(0), m(10), 10 * time.Minute, 1},
			{alice, guestID, m(20), m(25), 5 * time.Minute, 1},
		}},
	}
	for _, c := range cases {
		got := MergeAttendance(c.in, start, end, ReconnectGrace)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}

	lines := MergeAttendance([]Presence{
		{UserID: alice, HospitalID: guestID, JoinedAt: m(0), LeftAt: left(30)},
		{UserID: bob, HospitalID: guestID, JoinedAt: m(0), LeftAt: left(20)},
		{UserID: bob, HospitalID: countyID, JoinedAt: m(0), LeftAt: left(60)},
	}, start, end, ReconnectGrace)
	want := []HospitalAttendance{{countyID, 1, time.Hour}, {guestID, 2, 50 * time.Minute}}
	if got := ByHospital(lines); !reflect.DeepEqual(got, want) {
		t.Errorf("by hospital %+v, want %+v", got, want)
	}
}
