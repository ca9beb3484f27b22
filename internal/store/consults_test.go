package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// conTestSession is a scheduled MDT with every column filled, so that all
// of them round-trip.
func conTestSession(requesting, target string, at time.Time) consult.Session {
	t := at.Add(-time.Hour)
	return consult.Session{
		ID: dirTestID(), Kind: consult.MDT, Urgency: consult.Urgent,
		RequesterID: dirTestID(), RequestingHospitalID: requesting, RequestingDepartmentID: dirTestID(),
		TargetHospitalID: target, TargetDepartmentIDs: []string{dirTestID(), dirTestID()},
		RequestedSpecialistIDs: []string{dirTestID()},
		Question:               "是否手术？", ClinicalSummary: "男，62岁",
		Attachments: []consult.Attachment{
			{ID: dirTestID(), Kind: consult.PDF, Name: "ecg.pdf", ContentType: "application/pdf", Size: 1200},
			{ID: dirTestID(), Kind: consult.DICOM, Name: "ct.dcm", ContentType: "application/dicom", Size: 5 << 20,
				Dicom: &consult.DicomTags{Modality: "CT", StudyDate: "20261120", StudyInstanceUID: "1.2.3"}},
		},
		PatientID: dirTestID(), AttendeeHospitalIDs: []string{},
		Status: consult.Scheduled, Version: 3, CreatedAt: t, UpdatedAt: at,
		Specialists:    []consult.Assignment{{SpecialistID: dirTestID(), DepartmentID: dirTestID()}},
		AcceptedBy:     dirTestID(),
		AcceptedAt:     &t,
		Schedule:       &consult.Period{Start: at.Add(time.Hour), End: at.Add(2 * time.Hour)},
		ScheduledAt:    &at,
		DeclineReason:  "",
		CancelReason:   "",
		AcknowledgedBy: "",
	}
}

func conTestOpinion(author string, at time.Time) consult.Opinion {
	return consult.Opinion{
		Findings: "LAD狭窄70%", Impression: "冠心病", Recommendations: "上转造影",
		Diagnoses:       []referral.Diagnosis{{Code: "I25.1", Text: "冠状动脉粥样硬化性心脏病"}},
		ReferralAdvised: true, SuggestedDepartmentID: dirTestID(),
		AuthorID: author, UpdatedAt: at,
	}
}

func TestConsultStoreSessionRoundTrip(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		s := conTestSession(dirTestID(), dirTestID(), now)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, err := st.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
		}

		// Every later field survives an update; the draft opinion comes with it.
		next := got
		later := now.Add(time.Minute)
		next.Status, next.Version, next.StartedAt, next.EndedAt, next.SignedAt = consult.Ended, 4, &later, &later, nil
		next.AcknowledgedBy, next.AcknowledgedAt = dirTestID(), &later
		next.CancelledBy, next.CancelledAt, next.CancelReason = dirTestID(), &later, "取消"
		next.DeclinedBy, next.DeclinedAt, next.DeclineReason = dirTestID(), &later, "外出"
		op := conTestOpinion(next.Specialists[0].SpecialistID, later)
		next.Opinion = &op
		if err := st.UpdateSession(ctx, next, 3); err != nil {
			t.Fatal(err)
		}
		got, err = st.SessionForUpdate(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, next) {
			t.Fatalf("after update:\n got %+v\nwant %+v", got, next)
		}

		// A teaching round without a patient, schedule or opinion.
		round := consult.Session{ID: dirTestID(), Kind: consult.TeachingRound, Urgency: consult.Routine,
			RequesterID: dirTestID(), RequestingHospitalID: dirTestID(), TargetHospitalID: dirTestID(),
			TargetDepartmentIDs: []string{dirTestID()}, RequestedSpecialistIDs: []string{}, Question: "教学查房",
			Attachments: []consult.Attachment{}, AttendeeHospitalIDs: []string{dirTestID(), dirTestID()},
			Specialists: []consult.Assignment{}, Status: consult.Requested, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateSession(ctx, round); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Session(ctx, round.ID); err != nil || !reflect.DeepEqual(got, round) {
			t.Fatalf("teaching round: %v\n got %+v\nwant %+v", err, got, round)
		}

		stale := next
		stale.Version, stale.Question = 5, "changed"
		if err := st.UpdateSession(ctx, stale, 3); !errors.Is(err, apperr.ErrStale) {
			t.Fatalf("update at an old version: %v, want stale", err)
		}
		stale.ID = dirTestID()
		if err := st.UpdateSession(ctx, stale, 4); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("update of an unknown session: %v, want not found", err)
		}
		if _, err := st.Session(ctx, "1 OR 1=1"); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("malformed id: %v", err)
		}
	})
}

// TestConsultStoreSignedOpinionIsImmutable: the store never writes other
// content over a signed opinion, and the schema refuses a change by any
// other road.
func TestConsultStoreSignedOpinionIsImmutable(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		s := conTestSession(dirTestID(), dirTestID(), now)
		s.Status = consult.Ended
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		author := s.Specialists[0].SpecialistID
		op := conTestOpinion(author, now)
		s.Opinion, s.Version = &op, s.Version+1
		if err := st.UpdateSession(ctx, s, s.Version-1); err != nil {
			t.Fatal(err)
		}
		// A draft is rewritten freely.
		op2 := op
		op2.Impression = "冠心病，稳定型心绞痛"
		s.Opinion, s.Version = &op2, s.Version+1
		if err := st.UpdateSession(ctx, s, s.Version-1); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `UPDATE consult_opinions SET findings = 'x' WHERE session_id = $1`, s.ID); err != nil {
			t.Fatalf("a draft refused a change: %v", err)
		}

		// Sign through the domain, as the service will.
		p := conTestPrincipal(author, s.TargetHospitalID)
		s.Opinion.Findings = "LAD狭窄70%"
		signed, _, err := consult.Decide(s, p, consult.Sign, consult.ActionInput{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateSession(ctx, signed, s.Version); err != nil {
			t.Fatal(err)
		}
		got, err := st.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Opinion, signed.Opinion) || !got.Opinion.Intact(s.ID) {
			t.Fatalf("signed opinion as stored:\n got %+v\nwant %+v", got.Opinion, signed.Opinion)
		}

		// A later change of the session keeps the signed opinion as it is.
		ack := got
		ack.Status, ack.Version = consult.Acknowledged, got.Version+1
		if err := st.UpdateSession(ctx, ack, got.Version); err != nil {
			t.Fatalf("acknowledging with the signed opinion loaded: %v", err)
		}
		// Other content over it is refused, and the whole update with it.
		edited := ack
		changed := *ack.Opinion
		changed.Recommendations = "无需处理"
		edited.Opinion, edited.Version = &changed, ack.Version+1
		if err := st.UpdateSession(ctx, edited, ack.Version); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("overwriting a signed opinion: %v, want conflict", err)
		}
		if got, _ := st.Session(ctx, s.ID); got.Version != ack.Version || got.Opinion.Recommendations != signed.Opinion.Recommendations {
			t.Fatalf("the refused edit left traces: version %d, %q", got.Version, got.Opinion.Recommendations)
		}
		for _, q := range []string{
			`UPDATE consult_opinions SET recommendations = 'x' WHERE session_id = $1`,
			`DELETE FROM consult_opinions WHERE session_id = $1`,
		} {
			if _, err := db.Exec(ctx, q, s.ID); err == nil {
				t.Errorf("%s: allowed on a signed opinion", q)
			}
		}
	})
}

func conTestPrincipal(user, hospital string) auth.Principal {
	return auth.Principal{UserID: user, HospitalID: hospital, Roles: []auth.Role{auth.Specialist}}
}

func TestConsultStoreHistoryAndAddendaAreAppendOnly(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		s := conTestSession(dirTestID(), dirTestID(), now)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		evs := []consult.Event{
			{Action: consult.RequestAction, To: consult.Requested, Actor: s.RequesterID, ActorHospitalID: s.RequestingHospitalID, At: now},
			{Action: consult.Decline, From: consult.Requested, To: consult.Declined, Actor: dirTestID(), ActorHospitalID: s.TargetHospitalID, Reason: "外出", At: now.Add(time.Second)},
		}
		for _, ev := range evs {
			if err := st.AppendEvent(ctx, s.ID, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := st.Events(ctx, s.ID); err != nil || !reflect.DeepEqual(got, evs) {
			t.Fatalf("events: %v\n got %+v\nwant %+v", err, got, evs)
		}

		var added []consult.Addendum
		for i, text := range []string{"补充一", "补充二"} {
			a := consult.Addendum{SessionID: s.ID, Text: text, SignedBy: dirTestID(), SignedAt: now.Add(time.Duration(i) * time.Minute), Digest: "d"}
			got, err := st.AddAddendum(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != i+1 || !apperr.IsID(got.ID) {
				t.Fatalf("addendum %d: seq %d id %q", i, got.Seq, got.ID)
			}
			added = append(added, got)
		}
		if got, err := st.Addenda(ctx, s.ID); err != nil || !reflect.DeepEqual(got, added) {
			t.Fatalf("addenda: %v\n got %+v\nwant %+v", err, got, added)
		}
		for _, q := range []string{
			`UPDATE consult_events SET reason = 'x' WHERE session_id = $1`,
			`DELETE FROM consult_events WHERE session_id = $1`,
			`UPDATE consult_addenda SET text = 'x' WHERE session_id = $1`,
			`DELETE FROM consult_addenda WHERE session_id = $1`,
		} {
			if _, err := db.Exec(ctx, q, s.ID); err == nil {
				t.Errorf("%s: allowed", q)
			}
		}
	})
}

func TestConsultStoreListsThePartiesSessions(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		county, tertiary, guest, other := dirTestID(), dirTestID(), dirTestID(), dirTestID()
		mine := conTestSession(county, tertiary, now)
		theirs := conTestSession(other, tertiary, now)
		round := conTestSession(county, tertiary, now)
		round.Kind, round.PatientID, round.AttendeeHospitalIDs = consult.TeachingRound, "", []string{guest}
		for _, s := range []consult.Session{mine, theirs, round} {
			if err := st.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(f store.ConsultFilter) []string {
			f.Limit = 10
			got, err := st.ListSessions(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return dirTestIDs(got, func(s consult.Session) string { return s.ID })
		}
		for name, c := range map[string]struct {
			f    store.ConsultFilter
			want []string
		}{
			"the requesting county":   {store.ConsultFilter{PartyHospitalID: county}, []string{mine.ID, round.ID}},
			"the target":              {store.ConsultFilter{PartyHospitalID: tertiary}, []string{mine.ID, theirs.ID, round.ID}},
			"an invited hospital":     {store.ConsultFilter{PartyHospitalID: guest}, []string{round.ID}},
			"a teaching round filter": {store.ConsultFilter{PartyHospitalID: tertiary, Kind: consult.TeachingRound}, []string{round.ID}},
			"one patient":             {store.ConsultFilter{PatientID: mine.PatientID}, []string{mine.ID}},
			"after a cursor":          {store.ConsultFilter{PartyHospitalID: tertiary, After: theirs.ID}, []string{round.ID}},
			"by status, nothing":      {store.ConsultFilter{Status: consult.Live}, []string{}},
		} {
			if got := ids(c.f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %v, want %v", name, got, c.want)
			}
		}

	})
}

func TestConsultStorePresence(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		s := conTestSession(dirTestID(), dirTestID(), now)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		user := dirTestID()
		// A connection is held by the instance that records it: nobody
		// else could confirm or close it.
		if _, err := st.RecordJoin(ctx, consult.Presence{SessionID: s.ID, UserID: user, HospitalID: s.RequestingHospitalID, JoinedAt: now}, ""); !errors.Is(err, store.ErrNoInstance) {
			t.Fatalf("a connection recorded under no instance: %v", err)
		}
		first, err := st.RecordJoin(ctx, consult.Presence{SessionID: s.ID, UserID: user, HospitalID: s.RequestingHospitalID, JoinedAt: now}, "here")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLeave(ctx, first, now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// A retried leave keeps the first time.
		if err := st.RecordLeave(ctx, first, now.Add(50*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordJoin(ctx, consult.Presence{SessionID: s.ID, UserID: user, HospitalID: s.RequestingHospitalID, JoinedAt: now.Add(10*time.Minute + 20*time.Second)}, "here"); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLeave(ctx, dirTestID(), now); !errors.Is(err, apperr.ErrNotFound) {
			t.Fatalf("leaving an unknown connection: %v", err)
		}
		ps, err := st.Presence(ctx, s.ID)
		if err != nil || len(ps) != 2 || !ps[0].LeftAt.Equal(now.Add(10*time.Minute)) || ps[1].LeftAt != nil {
			t.Fatalf("presence: %v %+v", err, ps)
		}
		att := consult.MergeAttendance(ps, now, now.Add(30*time.Minute), consult.ReconnectGrace)
		if len(att) != 1 || att[0].Duration != 30*time.Minute || att[0].Periods != 1 {
			t.Fatalf("attendance %+v", att)
		}
	})
}

// Connections held by a server instance are confirmed by it; the sweep
// closes those of an instance that went silent at their last confirmation,
// and one left open before connections were held (migration 0014) at its
// joining, each once, and leaves alone the confirmed and the closed. A
// leave arriving after the sweep keeps the sweep's time.
func TestConsultStorePresenceSweep(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		t0 := sqldb.Now()
		s := conTestSession(dirTestID(), dirTestID(), t0)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		hospital := s.RequestingHospitalID
		join := func(user, instance string, at time.Time) string {
			t.Helper()
			id, err := st.RecordJoin(ctx, consult.Presence{SessionID: s.ID, UserID: user, HospitalID: hospital, JoinedAt: at}, instance)
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		seen := func(id string) time.Time {
			t.Helper()
			var at time.Time
			if err := db.QueryRow(ctx, `SELECT seen_at FROM consult_presence WHERE id = $1`, id).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at
		}
		confirm := func(instance string, at time.Time) []string {
			t.Helper()
			ids, err := st.ConfirmPresence(ctx, instance, at)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(ids)
			return ids
		}

		dead, live, nobody, gone, late := dirTestID(), dirTestID(), dirTestID(), dirTestID(), dirTestID()
		deadRow := join(dead, "dead", t0)
		lateRow := join(late, "dead", t0.Add(20*time.Second))
		goneRow := join(gone, "dead", t0)
		if err := st.RecordLeave(ctx, goneRow, t0.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		liveRow := join(live, "live", t0)
		// As migration 0014 left a connection recorded before it: held by
		// no instance, last seen when it joined.
		nobodyRow := dirTestID()
		if _, err := db.Exec(ctx, `INSERT INTO consult_presence (id, session_id, user_id, hospital_id, joined_at, seen_at)
			VALUES ($1, $2, $3, $4, $5, $5)`, nobodyRow, s.ID, nobody, hospital, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := seen(liveRow); !got.Equal(t0) {
			t.Fatalf("a new connection was last seen at %v, want its joining %v", got, t0)
		}

		// Each instance confirms its own open connections, and only those.
		want := []string{deadRow, lateRow}
		slices.Sort(want)
		if got := confirm("dead", t0.Add(40*time.Second)); !slices.Equal(got, want) {
			t.Fatalf("the dead instance confirmed %v, want %v", got, want)
		}
		if got := confirm("live", t0.Add(3*time.Minute)); !slices.Equal(got, []string{liveRow}) {
			t.Fatalf("the live instance confirmed %v", got)
		}
		if got := seen(liveRow); !got.Equal(t0.Add(3 * time.Minute)) {
			t.Fatalf("a confirmed connection was last seen at %v", got)
		}
		if confirm("live", t0.Add(time.Minute)); !seen(liveRow).Equal(t0.Add(3 * time.Minute)) {
			t.Fatalf("an earlier confirmation moved it back to %v", seen(liveRow))
		}
		if got := seen(goneRow); !got.Equal(t0) {
			t.Fatalf("a closed connection was confirmed: %v", got)
		}

		// Whatever was not confirmed since 2 minutes in goes, a batch at a
		// time, each at its last confirmation; nothing goes twice.
		cutoff := t0.Add(2 * time.Minute)
		var swept []store.SweptPresence
		for range 4 {
			got, err := st.SweepPresence(ctx, cutoff, 1)
			if err != nil {
				t.Fatal(err)
			}
			swept = append(swept, got...)
		}
		slices.SortFunc(swept, func(a, b store.SweptPresence) int { return strings.Compare(a.ID, b.ID) })
		wantSwept := []store.SweptPresence{
			{ID: deadRow, SessionID: s.ID, UserID: dead, HospitalID: hospital, Instance: "dead", JoinedAt: t0, LeftAt: t0.Add(40 * time.Second)},
			{ID: lateRow, SessionID: s.ID, UserID: late, HospitalID: hospital, Instance: "dead", JoinedAt: t0.Add(20 * time.Second), LeftAt: t0.Add(40 * time.Second)},
			{ID: nobodyRow, SessionID: s.ID, UserID: nobody, HospitalID: hospital, Instance: "", JoinedAt: t0.Add(-time.Hour), LeftAt: t0.Add(-time.Hour)},
		}
		slices.SortFunc(wantSwept, func(a, b store.SweptPresence) int { return strings.Compare(a.ID, b.ID) })
		if len(swept) != len(wantSwept) {
			t.Fatalf("swept %+v, want %+v", swept, wantSwept)
		}
		for i := range swept {
			g, w := swept[i], wantSwept[i]
			if g.ID != w.ID || g.SessionID != w.SessionID || g.UserID != w.UserID || g.HospitalID != w.HospitalID ||
				g.Instance != w.Instance || !g.JoinedAt.Equal(w.JoinedAt) || !g.LeftAt.Equal(w.LeftAt) {
				t.Fatalf("swept %+v, want %+v", g, w)
			}
		}

		// The dead instance's connections are no longer its to confirm; a
		// leave reported after the sweep keeps the sweep's time.
		if got := confirm("dead", t0.Add(4*time.Minute)); len(got) != 0 {
			t.Fatalf("the swept connections were confirmed again: %v", got)
		}
		if err := st.RecordLeave(ctx, deadRow, t0.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}

		ps, err := st.Presence(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		left := map[string]*time.Time{}
		for _, p := range ps {
			left[p.UserID] = p.LeftAt
		}
		at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
		for user, at := range map[string]*time.Time{dead: at(40 * time.Second), late: at(40 * time.Second),
			gone: at(30 * time.Second), live: nil, nobody: at(-time.Hour)} {
			if got := left[user]; (got == nil) != (at == nil) || got != nil && !got.Equal(*at) {
				t.Errorf("user %s left at %v, want %v", user, got, at)
			}
		}

		// Attendance counts the dead instance's connection to its last
		// confirmation, and the live ones to the end of the window.
		until := t0.Add(10 * time.Minute)
		durations := map[string]time.Duration{}
		for _, a := range consult.MergeAttendance(ps, t0, until, consult.ReconnectGrace) {
			durations[a.UserID] = a.Duration
		}
		wantDur := map[string]time.Duration{dead: 40 * time.Second, late: 20 * time.Second, gone: 30 * time.Second,
			live: 10 * time.Minute}
		if !reflect.DeepEqual(durations, wantDur) {
			t.Fatalf("attendance %v, want %v", durations, wantDur)
		}
	})
}

// A confirmation committed while the sweep waits for the row wins: the
// sweep checks the row again once it has it.
func TestConsultStorePresenceSweepYieldsToAConcurrentConfirmation(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		t0 := sqldb.Now()
		s := conTestSession(dirTestID(), dirTestID(), t0)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		id, err := st.RecordJoin(ctx, consult.Presence{SessionID: s.ID, UserID: dirTestID(), HospitalID: s.RequestingHospitalID, JoinedAt: t0}, "slow")
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			swept []store.SweptPresence
			err   error
		}
		done := make(chan result, 1)
		err = db.InTx(ctx, func(ctx context.Context) error {
			if ids, err := st.ConfirmPresence(ctx, "slow", t0.Add(5*time.Minute)); err != nil || len(ids) != 1 {
				return fmt.Errorf("confirm: %v %v", ids, err)
			}
			go func() {
				swept, err := st.SweepPresence(context.Background(), t0.Add(time.Minute), 10)
				done <- result{swept, err}
			}()
			time.Sleep(200 * time.Millisecond) // the sweep reaches the row and waits for it
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || len(r.swept) != 0 {
			t.Fatalf("the sweep closed a connection confirmed under it: %+v %v", r.swept, r.err)
		}
		ps, err := st.Presence(ctx, s.ID)
		if err != nil || len(ps) != 1 || ps[0].LeftAt != nil {
			t.Fatalf("presence %+v %v (row %s)", ps, err, id)
		}
	})
}

func conTestSlot(hospital string, start time.Time, capacity int) consult.ClinicSlot {
	return consult.ClinicSlot{
		ID: dirTestID(), SpecialistID: dirTestID(), HospitalID: hospital, DepartmentID: dirTestID(),
		Start: start, End: start.Add(30 * time.Minute), Capacity: capacity, Status: consult.SlotPublished,
		PublishedAt: start.Add(-8 * 24 * time.Hour), Version: 1,
	}
}

// TestConsultStoreNoDoubleBooking: many doctors reach for the same slot at
// once; exactly as many get a place as it has.
func TestConsultStoreNoDoubleBooking(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		hospital := dirTestID()
		for _, capacity := range []int{1, 3} {
			slot := conTestSlot(hospital, now.Add(8*24*time.Hour), capacity)
			if err := st.CreateSlot(ctx, slot); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Slot(ctx, slot.ID); err != nil || !reflect.DeepEqual(got, slot) {
				t.Fatalf("slot round trip: %v\n got %+v\nwant %+v", err, got, slot)
			}
			const doctors = 12
			errs := make([]error, doctors)
			var wg sync.WaitGroup
			for i := range doctors {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = st.TakePlace(ctx, slot.ID, now)
				}()
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, apperr.ErrConflict):
					t.Fatalf("booking failed otherwise: %v", err)
				}
			}
			got, _ := st.Slot(ctx, slot.ID)
			if won != capacity || got.Booked != capacity || got.Status != consult.SlotBooked || got.Version != 1+capacity {
				t.Fatalf("capacity %d: %d bookings won, slot %+v", capacity, won, got)
			}
			freed, err := st.ReleasePlace(ctx, slot.ID)
			if err != nil || freed.Booked != capacity-1 || freed.Status != consult.SlotPublished {
				t.Fatalf("release: %v %+v", err, freed)
			}
			if again, err := st.TakePlace(ctx, slot.ID, now); err != nil || again.Status != consult.SlotBooked {
				t.Fatalf("booking the released place: %v %+v", err, again)
			}
		}

		begun := conTestSlot(hospital, now.Add(-time.Minute), 1)
		if err := st.CreateSlot(ctx, begun); err != nil {
			t.Fatal(err)
		}
		if _, err := st.TakePlace(ctx, begun.ID, now); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("booking a begun slot: %v", err)
		}

		// A cancellation loses to a booking made since it was read.
		slot := conTestSlot(hospital, now.Add(9*24*time.Hour), 1)
		if err := st.CreateSlot(ctx, slot); err != nil {
			t.Fatal(err)
		}
		p := conTestPrincipal(slot.SpecialistID, hospital)
		cancelled, err := consult.CancelSlot(slot, p, "出差", now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.TakePlace(ctx, slot.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateSlot(ctx, cancelled, slot.Version); !errors.Is(err, apperr.ErrStale) {
			t.Fatalf("cancelling over a booking: %v, want stale", err)
		}
		free := conTestSlot(hospital, now.Add(10*24*time.Hour), 1)
		if err := st.CreateSlot(ctx, free); err != nil {
			t.Fatal(err)
		}
		cancelled, _ = consult.CancelSlot(free, conTestPrincipal(free.SpecialistID, hospital), "出差", now)
		if err := st.UpdateSlot(ctx, cancelled, free.Version); err != nil {
			t.Fatal(err)
		}
		if _, err := st.TakePlace(ctx, free.ID, now); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("booking a cancelled slot: %v", err)
		}

		list, err := st.Slots(ctx, store.SlotFilter{HospitalIDs: []string{hospital}, From: now, To: now.Add(30 * 24 * time.Hour)})
		byStart := func(a, b consult.ClinicSlot) int { return a.Start.Compare(b.Start) }
		if err != nil || len(list) != 3 || !slices.IsSortedFunc(list, byStart) {
			t.Fatalf("slots: %v %d", err, len(list))
		}
		list, _ = st.Slots(ctx, store.SlotFilter{HospitalIDs: []string{hospital}, From: now, To: now.Add(30 * 24 * time.Hour), IncludeCancelled: true})
		if len(list) != 4 {
			t.Fatalf("slots with cancelled ones: %d", len(list))
		}
		if list, _ := st.Slots(ctx, store.SlotFilter{HospitalIDs: []string{dirTestID()}, From: now, To: now.Add(30 * 24 * time.Hour)}); len(list) != 0 {
			t.Fatalf("another hospital's slots: %d", len(list))
		}
	})
}

func TestConsultStoreOnePatientOneBookingPerSlot(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		slotID := dirTestID()
		a := conTestSession(dirTestID(), dirTestID(), now)
		a.Kind, a.SlotID = consult.ExpertClinic, slotID
		b := a
		b.ID = dirTestID()
		if err := st.CreateSession(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSession(ctx, b); !errors.Is(err, apperr.ErrConflict) {
			t.Fatalf("the same patient booked twice on one slot: %v", err)
		}
		a.Status, a.Version = consult.Cancelled, a.Version+1
		if err := st.UpdateSession(ctx, a, a.Version-1); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSession(ctx, b); err != nil {
			t.Fatalf("booking again after cancelling: %v", err)
		}
	})
}

// A session's parties (the asking and asked hospitals, and those invited to
// a teaching round) reach the files it carries; nobody else, and no file it
// does not carry.
func TestConsultStoreTellsWhoReachesTheFilesASessionCarries(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		st := store.NewConsults(db)
		now := sqldb.Now()
		county, tertiary, guest, other := dirTestID(), dirTestID(), dirTestID(), dirTestID()
		s := conTestSession(county, tertiary, now)
		round := conTestSession(county, tertiary, now)
		round.Kind, round.PatientID, round.AttendeeHospitalIDs = consult.TeachingRound, "", []string{guest}
		round.Attachments = []consult.Attachment{{ID: dirTestID(), Kind: consult.Image, Name: "x.png", ContentType: "image/png", Size: 10}}
		for _, x := range []consult.Session{s, round} {
			if err := st.CreateSession(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		ct, pdf, slide := s.Attachments[1].ID, s.Attachments[0].ID, round.Attachments[0].ID
		for _, c := range []struct {
			file, hospital string
			want           bool
		}{
			{ct, county, true}, {ct, tertiary, true}, {pdf, tertiary, true},
			{ct, guest, false}, {ct, other, false},
			{slide, guest, true}, {slide, other, false},
			{dirTestID(), county, false}, {"%", county, false}, {ct, "%", false},
		} {
			got, err := st.CarriesAttachment(ctx, c.file, c.hospital)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("file %s, hospital %s: %t, want %t", c.file, c.hospital, got, c.want)
			}
		}
	})
}
