package rtc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/signaling"
)

// The world: 临溪 (county) asks 省人民医院 (tertiary); 石门 is invited to
// teaching rounds; 云岭 is no party.
const (
	county, tertiary, guest, outside = "h-county", "h-tertiary", "h-guest", "h-outside"
	assignedID                       = "u-assigned"
)

var start = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func who(user, hospital string, roles ...auth.Role) auth.Principal {
	return auth.Principal{UserID: user, HospitalID: hospital, Roles: roles, DisplayName: "name of " + user}
}

var (
	countyDoctor     = who("u-cd", county, auth.CountyDoctor)
	countySpecialist = who("u-cs", county, auth.Specialist)
	countyDispatched = who("u-dd", county, auth.DispatchedDoctor)
	countyDesk       = who("u-desk", county, auth.ReferralDesk)
	countyOffice     = who("u-office", county, auth.ProgramOffice, auth.Admin)
	assigned         = who(assignedID, tertiary, auth.Specialist)
	unassigned       = who("u-other", tertiary, auth.Specialist)
	guestDoctor      = who("u-guest", guest, auth.CountyDoctor)
	guestDesk        = who("u-guest-desk", guest, auth.ReferralDesk)
	outsider         = who("u-out", outside, auth.Specialist, auth.CountyDoctor)
)

func session(kind consult.Kind, status consult.Status) consult.Session {
	s := consult.Session{ID: "s-1", Kind: kind, Status: status, RequestingHospitalID: county, TargetHospitalID: tertiary,
		Specialists: []consult.Assignment{{SpecialistID: assignedID, DepartmentID: "d-1"}},
		Schedule:    &consult.Period{Start: start, End: start.Add(time.Hour)}}
	if kind == consult.TeachingRound {
		s.AttendeeHospitalIDs = []string{guest}
	} else {
		s.PatientID = "p-1"
	}
	return s
}

var (
	host        = signaling.Perms{Publish: true, Subscribe: true, Present: true, Admit: true}
	participant = signaling.Perms{Publish: true, Subscribe: true}
	presenting  = signaling.Perms{Publish: true, Subscribe: true, Present: true}
	viewer      = signaling.Perms{Subscribe: true}
)

func TestWhoJoinsWhichSessionAndWithWhatPermissions(t *testing.T) {
	during := start.Add(5 * time.Minute)
	cases := []struct {
		name  string
		s     consult.Session
		p     auth.Principal
		at    time.Time
		role  Role
		perms signaling.Perms
		err   error
	}{
		{"the assigned specialist hosts", session(consult.Consult, consult.Scheduled), assigned, during, Host, host, nil},
		{"the requesting county doctor takes part", session(consult.Consult, consult.Scheduled), countyDoctor, during, Participant, participant, nil},
		{"a specialist of the requesting hospital takes part", session(consult.MDT, consult.Live), countySpecialist, during, Participant, participant, nil},
		{"a dispatched doctor working there takes part", session(consult.ExpertClinic, consult.Live), countyDispatched, during, Participant, participant, nil},
		{"in an imaging review the requester may present", session(consult.ImagingReview, consult.Scheduled), countyDoctor, during, Participant, presenting, nil},
		{"the teaching round's presenter hosts", session(consult.TeachingRound, consult.Live), assigned, during, Host, host, nil},
		{"the requesting hospital brings the case to a teaching round", session(consult.TeachingRound, consult.Live), countyDoctor, during, Participant, participant, nil},
		{"an invited hospital's doctor watches a teaching round", session(consult.TeachingRound, consult.Live), guestDoctor, during, Viewer, viewer, nil},

		{"an unassigned specialist of the answering hospital is refused", session(consult.Consult, consult.Live), unassigned, during, "", signaling.Perms{}, apperr.ErrForbidden},
		{"the referral desk is refused", session(consult.Consult, consult.Live), countyDesk, during, "", signaling.Perms{}, apperr.ErrForbidden},
		{"the program office and admins are refused", session(consult.Consult, consult.Live), countyOffice, during, "", signaling.Perms{}, apperr.ErrForbidden},
		{"an invited hospital's desk is refused", session(consult.TeachingRound, consult.Live), guestDesk, during, "", signaling.Perms{}, apperr.ErrForbidden},
		{"another hospital does not see the session", session(consult.Consult, consult.Live), outsider, during, "", signaling.Perms{}, apperr.ErrNotFound},
		{"a hospital invited to nothing but a teaching round sees no consult", func() consult.Session {
			s := session(consult.Consult, consult.Live)
			s.AttendeeHospitalIDs = []string{guest}
			return s
		}(), guestDoctor, during, "", signaling.Perms{}, apperr.ErrNotFound},

		{"the room opens 15 minutes before the start", session(consult.Consult, consult.Scheduled), countyDoctor, start.Add(-JoinEarly), Participant, participant, nil},
		{"not earlier", session(consult.Consult, consult.Scheduled), countyDoctor, start.Add(-JoinEarly - time.Second), "", signaling.Perms{}, apperr.ErrConflict},
		{"a scheduled session past its end is closed", session(consult.Consult, consult.Scheduled), assigned, start.Add(time.Hour), "", signaling.Perms{}, apperr.ErrConflict},
		{"a live session stays open past its scheduled end", session(consult.Consult, consult.Live), assigned, start.Add(3 * time.Hour), Host, host, nil},
		{"an accepted session is not scheduled yet", session(consult.Consult, consult.Accepted), assigned, during, "", signaling.Perms{}, apperr.ErrConflict},
		{"a requested session is not scheduled yet", session(consult.Consult, consult.Requested), countyDoctor, during, "", signaling.Perms{}, apperr.ErrConflict},
		{"an ended session is closed", session(consult.Consult, consult.Ended), assigned, during, "", signaling.Perms{}, apperr.ErrConflict},
		{"a cancelled session is closed", session(consult.Consult, consult.Cancelled), countyDoctor, during, "", signaling.Perms{}, apperr.ErrConflict},
		{"outsiders learn nothing, not even the state", session(consult.Consult, consult.Cancelled), outsider, during, "", signaling.Perms{}, apperr.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			role, perms, err := Permissions(c.s, c.p, c.at)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || role != c.role || perms != c.perms {
				t.Fatalf("got %s %+v %v, want %s %+v", role, perms, err, c.role, c.perms)
			}
		})
	}
}

type fakeSessions struct {
	s         consult.Session
	joins     []consult.Presence
	instances []string
	leaves    []string
	open      map[string]string // presence row → its instance, while open
	failLeave error
}

func (f *fakeSessions) Session(_ context.Context, id string) (consult.Session, error) {
	if id != f.s.ID {
		return consult.Session{}, apperr.ErrNotFound
	}
	return f.s, nil
}

func (f *fakeSessions) RecordJoin(_ context.Context, p consult.Presence, instance string) (string, error) {
	id := fmt.Sprintf("presence-%s-%d", p.UserID, len(f.joins))
	f.joins = append(f.joins, p)
	f.instances = append(f.instances, instance)
	if f.open == nil {
		f.open = map[string]string{}
	}
	f.open[id] = instance
	return id, nil
}

func (f *fakeSessions) RecordLeave(_ context.Context, id string, _ time.Time) error {
	if f.failLeave != nil {
		return f.failLeave
	}
	f.leaves = append(f.leaves, id)
	delete(f.open, id)
	return nil
}

func (f *fakeSessions) ConfirmPresence(_ context.Context, instance string, _ time.Time) ([]string, error) {
	var ids []string
	for id, in := range f.open {
		if in == instance {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

type auditLog struct{ entries []audit.Entry }

func (a *auditLog) Record(_ context.Context, e audit.Entry) error {
	a.entries = append(a.entries, e)
	return nil
}

func newService(t *testing.T, s consult.Session) (*Service, *fakeSessions, *auditLog) {
	t.Helper()
	tok, err := signaling.NewTokens([]byte(strings.Repeat("k", 32)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st, al := &fakeSessions{s: s}, &auditLog{}
	svc := New(Config{Sessions: st, Audit: al, Now: func() time.Time { return start },
		Granter: signaling.Granter{Tokens: tok, ICE: signaling.ICEConfig{TURN: []string{"turn:turn.example:3478"}, TURNSecret: []byte("0123456789abcdef")}}})
	return svc, st, al
}

func TestJoinIsAuditedWithThePatientAndGrantsATokenForTheRoom(t *testing.T) {
	svc, _, al := newService(t, session(consult.Consult, consult.Scheduled))
	tk, err := svc.Join(context.Background(), countyDoctor, "s-1", "wss://node1.example")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Room != "s-1" || tk.WSURL != "wss://node1.example/api/v1/sessions/s-1/ws" || tk.Permissions != participant || tk.Token == "" {
		t.Fatalf("ticket %+v", tk)
	}
	if strings.Contains(tk.WSURL, tk.Token) {
		t.Fatal("the token is in the URL")
	}
	if len(tk.ICEServers) != 1 || tk.ICEServers[0].Username == "" || tk.ICEServers[0].Credential == "" {
		t.Fatalf("ICE servers without TURN credentials: %+v", tk.ICEServers)
	}
	if len(al.entries) != 1 {
		t.Fatalf("audit %+v", al.entries)
	}
	e := al.entries[0]
	if e.Action != ActionJoin || e.Outcome != audit.Success || e.PatientID != "p-1" || e.ResourceID != "s-1" || e.ActorID != countyDoctor.UserID {
		t.Fatalf("audit entry %+v", e)
	}
}

func TestConfiguredBaseURLWinsOverTheRequests(t *testing.T) {
	svc, _, _ := newService(t, session(consult.TeachingRound, consult.Live))
	svc.cfg.BaseURL = "wss://duikou.example/"
	tk, err := svc.Join(context.Background(), guestDoctor, "s-1", "ws://10.0.0.5:8080")
	if err != nil {
		t.Fatal(err)
	}
	if tk.WSURL != "wss://duikou.example/api/v1/sessions/s-1/ws" || tk.Permissions != viewer || tk.Role != Viewer {
		t.Fatalf("ticket %+v", tk)
	}
}

func TestRefusalsAreAudited(t *testing.T) {
	cases := []struct {
		name   string
		s      consult.Session
		p      auth.Principal
		err    error
		action string
	}{
		{"outsider", session(consult.Consult, consult.Live), outsider, apperr.ErrNotFound, audit.AccessDenied},
		{"unassigned specialist", session(consult.Consult, consult.Live), unassigned, apperr.ErrForbidden, ActionJoin},
		{"not yet scheduled", session(consult.Consult, consult.Accepted), countyDoctor, apperr.ErrConflict, ActionJoin},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc, _, al := newService(t, c.s)
			if _, err := svc.Join(context.Background(), c.p, "s-1", "ws://x"); !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if len(al.entries) != 1 || al.entries[0].Outcome != audit.Denied || al.entries[0].Action != c.action || al.entries[0].ActorID != c.p.UserID {
				t.Fatalf("audit %+v", al.entries)
			}
		})
	}
}

func TestAttendanceFollowsTheRoomsHooks(t *testing.T) {
	svc, st, _ := newService(t, session(consult.Consult, consult.Live))
	svc.Joined("s-1", signaling.ParticipantInfo{ID: "u-cd", Hospital: county}, start)
	svc.Left("s-1", "u-cd", start.Add(time.Minute))
	svc.Left("s-1", "u-cd", start.Add(2*time.Minute)) // no open presence: nothing to close
	if len(st.joins) != 1 || st.joins[0].SessionID != "s-1" || st.joins[0].HospitalID != county || !st.joins[0].JoinedAt.Equal(start) {
		t.Fatalf("joins %+v", st.joins)
	}
	if len(st.leaves) != 1 || st.leaves[0] != "presence-u-cd-0" {
		t.Fatalf("leaves %+v", st.leaves)
	}
}
