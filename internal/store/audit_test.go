package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

// auditClock is a test clock that moves one second per reading.
type auditClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *auditClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

var auditEpoch = time.Date(2025, 3, 1, 8, 0, 0, 123456789, time.FixedZone("CST", 8*3600))

func newAuditTestLog(db sqldb.DB) *audit.Log {
	c := &auditClock{t: auditEpoch}
	return audit.NewLog(store.NewAuditLog(db), c.now)
}

// auditRecordSpread records n entries without a request id, which the log
// deals round the chains: with n = 3*audit.Chains every chain holds rows
// 1, 2 and 3.
func auditRecordSpread(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		err := l.Record(context.Background(), audit.Entry{
			ActorID: "user-" + fmt.Sprint(i%5), ActorHospitalID: "hosp-a", Action: "patient.read",
			ResourceType: "patient", ResourceID: fmt.Sprintf("p-%02d", i), PatientID: fmt.Sprintf("p-%02d", i),
			Outcome: audit.Success, Detail: fmt.Sprintf("entry %d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func auditVerify(t *testing.T, l *audit.Log) audit.Report {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func auditWantIntact(t *testing.T, rep audit.Report, rows int64) {
	t.Helper()
	if !rep.OK || len(rep.Breaks) != 0 || rep.RowsChecked != rows || rep.Chains != audit.Chains {
		t.Fatalf("report = %+v, want ok with %d rows on %d chains", rep, rows, audit.Chains)
	}
}

func auditCount(t *testing.T, db sqldb.DB) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM audit_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// auditSeqOf returns the table seq of a chain's row.
func auditSeqOf(t *testing.T, db sqldb.DB, chain int, chainSeq int64) int64 {
	t.Helper()
	var seq int64
	if err := db.QueryRow(context.Background(), `SELECT seq FROM audit_log WHERE chain = $1 AND chain_seq = $2`,
		chain, chainSeq).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// auditTamper runs a statement the way someone with direct database access
// could: with the append-only triggers out of the way.
func auditTamper(t *testing.T, db sqldb.DB, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	var err error
	if db.Dialect() == sqldb.Postgres {
		err = db.InTx(ctx, func(ctx context.Context) error {
			if _, err := db.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER`); err != nil {
				return err
			}
			if _, err := db.Exec(ctx, stmt, args...); err != nil {
				return err
			}
			_, err := db.Exec(ctx, `ALTER TABLE audit_log ENABLE TRIGGER USER`)
			return err
		})
	} else {
		for _, drop := range []string{`DROP TRIGGER IF EXISTS audit_log_no_update`, `DROP TRIGGER IF EXISTS audit_log_no_delete`} {
			if _, err := db.Exec(ctx, drop); err != nil {
				t.Fatal(err)
			}
		}
		_, err = db.Exec(ctx, stmt, args...)
	}
	if err != nil {
		t.Fatalf("tamper %q: %v", stmt, err)
	}
}

func TestAuditLogAppendedRowsVerify(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		l := newAuditTestLog(db)
		auditWantIntact(t, auditVerify(t, l), 0)

		auditRecordSpread(t, l, 3*audit.Chains)
		auditWantIntact(t, auditVerify(t, l), 3*audit.Chains)

		// Each chain starts at the genesis hash and links row to row.
		var prev []byte
		for chainSeq := int64(1); chainSeq <= 3; chainSeq++ {
			var prevHash, hash []byte
			if err := db.QueryRow(context.Background(), `SELECT prev_hash, hash FROM audit_log WHERE chain = 5 AND chain_seq = $1`,
				chainSeq).Scan(&prevHash, &hash); err != nil {
				t.Fatal(err)
			}
			want := prev
			if chainSeq == 1 {
				want = audit.GenesisHash()
			}
			if string(prevHash) != string(want) || len(hash) != audit.HashSize {
				t.Fatalf("row %d: prev_hash %x (want %x), hash %x", chainSeq, prevHash, want, hash)
			}
			prev = hash
		}
	})
}

func TestAuditLogRecordStampsAndBoundsEntries(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		l := newAuditTestLog(db)
		ctx := audit.WithSource(context.Background(), audit.Source{RequestID: "req-12345678", ClientAddr: "10.1.2.3"})
		long := strings.Repeat("病", audit.MaxDetail+10)
		if err := l.Record(ctx, audit.Entry{Action: "patient.read", Outcome: audit.Success, Detail: long,
			At: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		// Text PostgreSQL would refuse (NUL, broken UTF-8) is stored, not fatal.
		if err := l.Record(ctx, audit.Entry{Action: "patient.read", Outcome: audit.Failure, Detail: "bad\x00byte\xff",
			RequestID: "own-request-id"}); err != nil {
			t.Fatal(err)
		}
		got, err := l.Search(context.Background(), audit.Filter{}, audit.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d entries", len(got))
		}
		older, newer := got[1], got[0]
		wantAt := auditEpoch.Add(time.Second).UTC().Truncate(time.Microsecond)
		if !older.At.Equal(wantAt) || older.At.Location() != time.UTC {
			t.Errorf("at = %v, want the log's clock %v in UTC", older.At, wantAt)
		}
		if older.RequestID != "req-12345678" || older.ClientAddr != "10.1.2.3" {
			t.Errorf("source = %q %q, want the context's", older.RequestID, older.ClientAddr)
		}
		if n := utf8.RuneCountInString(older.Detail); n != audit.MaxDetail || !strings.HasSuffix(older.Detail, "[truncated]") {
			t.Errorf("detail has %d characters, ends %q", n, older.Detail[len(older.Detail)-20:])
		}
		if newer.RequestID != "own-request-id" || newer.Detail != "bad\uFFFDbyte\uFFFD" {
			t.Errorf("request id %q, detail %q", newer.RequestID, newer.Detail)
		}
		auditWantIntact(t, auditVerify(t, l), 2)
	})
}

func TestAuditLogRecordRefusesEntriesWithoutActionOrOutcome(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		l := newAuditTestLog(db)
		for _, e := range []audit.Entry{
			{Outcome: audit.Success},
			{Action: "  ", Outcome: audit.Success},
			{Action: "patient.read"},
			{Action: "patient.read", Outcome: "maybe"},
		} {
			if err := l.Record(context.Background(), e); !errors.Is(err, audit.ErrInvalidEntry) {
				t.Errorf("Record(%+v) = %v, want ErrInvalidEntry", e, err)
			}
		}
		if n := auditCount(t, db); n != 0 {
			t.Fatalf("%d rows written", n)
		}
	})
}

func TestAuditLogDetectsTampering(t *testing.T) {
	// Every chain holds rows 1..3; the cases tamper with chain 7.
	const chain = 7
	cases := []struct {
		name string
		// tamper changes the table; it gets the seq of chain 7's rows 1..3.
		tamper func(t *testing.T, db sqldb.DB, seqs [4]int64)
		want   func(seqs [4]int64) audit.Break
	}{
		{
			name: "altered detail is a hash mismatch on that row",
			tamper: func(t *testing.T, db sqldb.DB, seqs [4]int64) {
				auditTamper(t, db, `UPDATE audit_log SET detail = 'nothing happened' WHERE seq = $1`, seqs[2])
			},
			want: func(seqs [4]int64) audit.Break {
				return audit.Break{Chain: chain, ChainSeq: 2, Seq: seqs[2], Reason: "hash does not match the row's content: the row was altered"}
			},
		},
		{
			name: "altered row with its hash recomputed breaks the next row's link",
			tamper: func(t *testing.T, db sqldb.DB, seqs [4]int64) {
				var e audit.Entry
				if err := db.QueryRow(context.Background(), `SELECT chain, chain_seq, at, action, outcome, prev_hash FROM audit_log WHERE seq = $1`,
					seqs[2]).Scan(&e.Chain, &e.ChainSeq, &e.At, &e.Action, (*string)(&e.Outcome), &e.PrevHash); err != nil {
					t.Fatal(err)
				}
				// The forger rewrites every column, then the hash to match.
				auditTamper(t, db, `UPDATE audit_log SET actor_id = '', actor_hospital_id = '', resource_type = '', resource_id = '',
					patient_id = '', request_id = '', client_addr = '', detail = '', hash = $2 WHERE seq = $1`,
					seqs[2], audit.ChainHash(e.PrevHash, e))
			},
			want: func(seqs [4]int64) audit.Break {
				return audit.Break{Chain: chain, ChainSeq: 3, Seq: seqs[3], Reason: "prev_hash does not match the hash of row 2"}
			},
		},
		{
			name: "deleted row is a gap before the next row",
			tamper: func(t *testing.T, db sqldb.DB, seqs [4]int64) {
				auditTamper(t, db, `DELETE FROM audit_log WHERE seq = $1`, seqs[2])
			},
			want: func(seqs [4]int64) audit.Break {
				return audit.Break{Chain: chain, ChainSeq: 3, Seq: seqs[3], Reason: "row 2 of the chain is missing"}
			},
		},
		{
			name: "deleted newest row is caught by the chain head",
			tamper: func(t *testing.T, db sqldb.DB, seqs [4]int64) {
				auditTamper(t, db, `DELETE FROM audit_log WHERE seq = $1`, seqs[3])
			},
			want: func(seqs [4]int64) audit.Break {
				return audit.Break{Chain: chain, ChainSeq: 3,
					Reason: "rows 3 to 3 are missing from the end of the chain (its head records 3 rows)"}
			},
		},
		{
			name: "row inserted past the head is caught",
			tamper: func(t *testing.T, db sqldb.DB, seqs [4]int64) {
				var e audit.Entry
				if err := db.QueryRow(context.Background(), `SELECT chain, chain_seq, at, action, outcome, hash FROM audit_log WHERE seq = $1`,
					seqs[3]).Scan(&e.Chain, &e.ChainSeq, &e.At, &e.Action, (*string)(&e.Outcome), &e.PrevHash); err != nil {
					t.Fatal(err)
				}
				e.ChainSeq = 4
				auditTamper(t, db, `INSERT INTO audit_log (chain, chain_seq, at, action, outcome, prev_hash, hash)
					VALUES ($1, 4, $2, $3, $4, $5, $6)`, chain, e.At, e.Action, string(e.Outcome), e.PrevHash, audit.ChainHash(e.PrevHash, e))
			},
			want: func(seqs [4]int64) audit.Break {
				return audit.Break{Chain: chain, ChainSeq: 4,
					Reason: "rows 4 to 4 lie past the chain's head (3): appended outside the log"}
			},
		},
		{
			name: "deleted chain head is caught",
			tamper: func(t *testing.T, db sqldb.DB, seqs [4]int64) {
				auditTamper(t, db, `DELETE FROM audit_heads WHERE chain = $1`, chain)
			},
			want: func(seqs [4]int64) audit.Break {
				return audit.Break{Chain: chain, ChainSeq: 3, Seq: seqs[3], Reason: "the chain has rows but no head"}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
				l := newAuditTestLog(db)
				auditRecordSpread(t, l, 3*audit.Chains)
				var seqs [4]int64
				for i := int64(1); i <= 3; i++ {
					seqs[i] = auditSeqOf(t, db, chain, i)
				}
				tc.tamper(t, db, seqs)
				rep := auditVerify(t, l)
				want := tc.want(seqs)
				if rep.OK || len(rep.Breaks) != 1 || rep.Breaks[0] != want {
					t.Fatalf("report = %+v\nwant exactly the break %+v", rep, want)
				}
			})
		})
	}
}

func TestAuditLogRowsCannotBeChangedByTheApplication(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		l := newAuditTestLog(db)
		auditRecordSpread(t, l, 3)
		stmts := []string{
			`UPDATE audit_log SET detail = 'rewritten'`,
			`UPDATE audit_log SET chain_seq = chain_seq + 100 WHERE chain_seq = 1`,
			`DELETE FROM audit_log`,
			`DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)`,
		}
		if db.Dialect() == sqldb.Postgres {
			stmts = append(stmts, `TRUNCATE audit_log`)
		}
		for _, stmt := range stmts {
			if _, err := db.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want the append-only refusal", stmt, err)
			}
		}
		if n := auditCount(t, db); n != 3 {
			t.Fatalf("%d rows left, want 3", n)
		}
		auditWantIntact(t, auditVerify(t, l), 3)
	})
}

func TestAuditLogEntryRollsBackWithItsTransaction(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		l := newAuditTestLog(db)
		auditRecordSpread(t, l, 2)
		refused := errors.New("the change failed after it was audited")
		err := db.InTx(ctx, func(ctx context.Context) error {
			for i := range 3 {
				if err := l.Record(ctx, audit.Entry{Action: "referral.update", Outcome: audit.Success,
					ResourceID: fmt.Sprint("r-", i)}); err != nil {
					return err
				}
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("err = %v", err)
		}
		if n := auditCount(t, db); n != 2 {
			t.Fatalf("%d rows, want the 2 from before the rolled-back transaction", n)
		}
		auditWantIntact(t, auditVerify(t, l), 2)

		// The log goes on from where the committed rows end.
		err = db.InTx(ctx, func(ctx context.Context) error {
			return l.Record(ctx, audit.Entry{Action: "referral.update", Outcome: audit.Success})
		})
		if err != nil {
			t.Fatal(err)
		}
		auditWantIntact(t, auditVerify(t, l), 3)
	})
}

func TestAuditLogConcurrentRecording(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		l := newAuditTestLog(db)
		const writers = 50
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := audit.WithSource(context.Background(), audit.Source{RequestID: fmt.Sprintf("request-%04d", i)})
				// Half record on their own; half record twice inside a
				// transaction, as a change and its read would.
				if i%2 == 0 {
					errs <- l.Record(ctx, audit.Entry{Action: "patient.read", Outcome: audit.Success})
					return
				}
				errs <- db.InTx(ctx, func(ctx context.Context) error {
					for range 2 {
						if err := l.Record(ctx, audit.Entry{Action: "referral.create", Outcome: audit.Success}); err != nil {
							return err
						}
					}
					return nil
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		want := int64(writers/2 + 2*writers/2)
		if n := auditCount(t, db); n != want {
			t.Fatalf("%d rows, want %d", n, want)
		}
		rep := auditVerify(t, l)
		if !rep.OK || rep.RowsChecked != want {
			t.Fatalf("report = %+v", rep)
		}
	})
}

func TestAuditLogSearch(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		l := newAuditTestLog(db)
		entries := []audit.Entry{
			{ActorID: "u1", ActorHospitalID: "h1", Action: "patient.read", ResourceType: "patient", ResourceID: "p1", PatientID: "p1", Outcome: audit.Success},
			{ActorID: "u1", ActorHospitalID: "h1", Action: "patient.update", ResourceType: "patient", ResourceID: "p1", PatientID: "p1", Outcome: audit.Success},
			{ActorID: "u2", ActorHospitalID: "h2", Action: "patient.read", ResourceType: "patient", ResourceID: "p1", PatientID: "p1", Outcome: audit.Denied},
			{ActorID: "u2", ActorHospitalID: "h2", Action: "referral.create", ResourceType: "referral", ResourceID: "r1", PatientID: "p2", Outcome: audit.Success},
			{ActorID: "u3", ActorHospitalID: "h1", Action: audit.LoginFailed, Outcome: audit.Failure},
			{ActorID: "u3", ActorHospitalID: "h1", Action: audit.Login, Outcome: audit.Success},
			{ActorID: "u3", ActorHospitalID: "h1", Action: "patient.read", ResourceType: "patient", ResourceID: "p2", PatientID: "p2", Outcome: audit.Success},
			{ActorID: "u1", ActorHospitalID: "h1", Action: "referral.update", ResourceType: "referral", ResourceID: "r1", PatientID: "p2", Outcome: audit.Success},
			{ActorID: "u2", ActorHospitalID: "h2", Action: "patient.read", ResourceType: "patient", ResourceID: "p3", PatientID: "p3", Outcome: audit.Success},
			{ActorID: "u1", ActorHospitalID: "h1", Action: audit.Logout, Outcome: audit.Success},
		}
		for i, e := range entries {
			e.Detail = fmt.Sprint(i)
			if err := l.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		// at is when entries[i] was recorded.
		at := func(i int) time.Time {
			return auditEpoch.Add(time.Duration(i+1) * time.Second).Truncate(time.Microsecond)
		}

		cases := []struct {
			name   string
			filter audit.Filter
			want   []int // indexes into entries, newest first
		}{
			{"no filter returns everything newest first", audit.Filter{}, []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
			{"by actor", audit.Filter{ActorID: "u2"}, []int{8, 3, 2}},
			{"by actor's hospital", audit.Filter{ActorHospitalID: "h2"}, []int{8, 3, 2}},
			{"by patient", audit.Filter{PatientID: "p1"}, []int{2, 1, 0}},
			{"by action", audit.Filter{Action: "patient.read"}, []int{8, 6, 2, 0}},
			{"by resource", audit.Filter{ResourceType: "referral", ResourceID: "r1"}, []int{7, 3}},
			{"by outcome", audit.Filter{Outcome: audit.Denied}, []int{2}},
			{"from is inclusive, to exclusive", audit.Filter{From: at(3), To: at(6)}, []int{5, 4, 3}},
			{"filters combine", audit.Filter{Action: "patient.read", PatientID: "p1", Outcome: audit.Success}, []int{0}},
			{"nothing matches", audit.Filter{ActorID: "nobody"}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := l.Search(ctx, tc.filter, audit.Page{Limit: 50})
				if err != nil {
					t.Fatal(err)
				}
				var gotIdx []int
				for _, e := range got {
					var i int
					fmt.Sscan(e.Detail, &i)
					gotIdx = append(gotIdx, i)
				}
				if fmt.Sprint(gotIdx) != fmt.Sprint(tc.want) {
					t.Fatalf("got entries %v, want %v", gotIdx, tc.want)
				}
			})
		}

		t.Run("pages follow each other without gaps or repeats", func(t *testing.T) {
			var seen []int64
			page := audit.Page{Limit: 3}
			for pages := 0; ; pages++ {
				if pages > 5 {
					t.Fatal("paging does not end")
				}
				got, err := l.Search(ctx, audit.Filter{}, page)
				if err != nil {
					t.Fatal(err)
				}
				more := len(got) > page.Limit
				if more {
					got = got[:page.Limit]
				}
				for _, e := range got {
					seen = append(seen, e.Seq)
				}
				if !more {
					break
				}
				page.BeforeSeq = got[len(got)-1].Seq
			}
			if len(seen) != len(entries) {
				t.Fatalf("saw %d entries over the pages, want %d", len(seen), len(entries))
			}
			for i := 1; i < len(seen); i++ {
				if seen[i] >= seen[i-1] {
					t.Fatalf("seqs not strictly descending: %v", seen)
				}
			}
		})

		t.Run("bad filters are refused field by field", func(t *testing.T) {
			_, err := l.Search(ctx, audit.Filter{Outcome: "maybe", ActorID: strings.Repeat("x", 301), From: at(5), To: at(5)},
				audit.Page{Limit: audit.MaxPageSize + 1})
			var inv apperr.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want apperr.Invalid", err)
			}
			var fields []string
			for _, f := range inv {
				fields = append(fields, f.Field)
			}
			if fmt.Sprint(fields) != "[actor_id outcome to limit]" {
				t.Fatalf("fields = %v", fields)
			}
		})
	})
}

func TestAuditLogVerifyStreamsPastOnePage(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		l := newAuditTestLog(db)
		// More rows than Walk reads per query, recorded in one transaction
		// (all on one chain, since they share the context's request id).
		const rows = 2105
		ctx = audit.WithSource(ctx, audit.Source{RequestID: "bulk-export-0001"})
		err := db.InTx(ctx, func(ctx context.Context) error {
			for i := range rows {
				if err := l.Record(ctx, audit.Entry{Action: audit.Export, Outcome: audit.Success, PatientID: fmt.Sprint("p-", i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rep := auditVerify(t, l)
		if !rep.OK || rep.RowsChecked != rows {
			t.Fatalf("report = %+v", rep)
		}
		var chain int
		if err := db.QueryRow(ctx, `SELECT chain FROM audit_log WHERE chain_seq = 1`).Scan(&chain); err != nil {
			t.Fatal(err)
		}
		seq := auditSeqOf(t, db, chain, 2050)
		auditTamper(t, db, `UPDATE audit_log SET patient_id = 'someone else' WHERE seq = $1`, seq)
		rep = auditVerify(t, l)
		want := audit.Break{Chain: chain, ChainSeq: 2050, Seq: seq, Reason: "hash does not match the row's content: the row was altered"}
		if rep.OK || rep.RowsChecked != rows || len(rep.Breaks) != 1 || rep.Breaks[0] != want {
			t.Fatalf("report = %+v, want the one break %+v", rep, want)
		}
	})
}

func TestAuditLogVerifiesWhileEntriesAreAppended(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		l := newAuditTestLog(db)
		auditRecordSpread(t, l, 3*audit.Chains)
		stop := make(chan struct{})
		var appended atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx := audit.WithSource(context.Background(), audit.Source{RequestID: fmt.Sprintf("writer-%d-%d", w, i)})
					if err := l.Record(ctx, audit.Entry{Action: "patient.read", Outcome: audit.Success}); err != nil {
						errs <- err
						return
					}
					appended.Add(1)
				}
			}()
		}
		// Verify over and over while the writers append a few hundred rows,
		// so that rows land between the reading of the heads and the walk.
		var broken *audit.Report
		for verifies := 0; verifies < 10 || appended.Load() < 400; verifies++ {
			if rep := auditVerify(t, l); !rep.OK {
				broken = &rep
				break
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if broken != nil {
			t.Fatalf("verify during appends: %+v", *broken)
		}
		auditWantIntact(t, auditVerify(t, l), auditCount(t, db))
	})
}

// On PostgreSQL an appending transaction holds its chain's head until it
// commits; a second transaction that prefers the same chain takes a free one
// instead of waiting, and a transaction that appends again keeps to its chain.
func TestAuditLogTransactionsDoNotQueueOnOneChain(t *testing.T) {
	db := sqldbtest.Postgres(t)
	l := newAuditTestLog(db)
	ctx := audit.WithSource(context.Background(), audit.Source{RequestID: "same-request-id"})

	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, func(ctx context.Context) error {
			if err := l.Record(ctx, audit.Entry{Action: "referral.create", Outcome: audit.Success, Detail: "first"}); err != nil {
				return err
			}
			// The append goes to the server with the transaction's next
			// statement: send one, so that the head is taken while the
			// transaction stays open.
			if _, err := db.Exec(ctx, `SELECT 1`); err != nil {
				return err
			}
			close(holding)
			<-release
			return l.Record(ctx, audit.Entry{Action: "referral.create", Outcome: audit.Success, Detail: "first again"})
		})
	}()
	select {
	case <-holding:
	case err := <-done:
		t.Fatal(err)
	}

	waitless, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := l.Record(waitless, audit.Entry{Action: "patient.read", Outcome: audit.Success, Detail: "second"}); err != nil {
		t.Fatalf("second transaction waited for the first one's chain: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	chainOf := map[string]int{}
	rows, err := db.Query(context.Background(), `SELECT detail, chain FROM audit_log`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var detail string
		var chain int
		if err := rows.Scan(&detail, &chain); err != nil {
			t.Fatal(err)
		}
		chainOf[detail] = chain
	}
	rows.Close()
	if chainOf["first"] != chainOf["first again"] || chainOf["first"] == chainOf["second"] {
		t.Fatalf("chains = %v: want the first transaction on one chain, the second on another", chainOf)
	}
	auditWantIntact(t, auditVerify(t, l), 3)
}

// BenchmarkAuditLogRecordInTransaction measures Record on the path of a
// patient-data change: inside the caller's transaction, many at once.
func BenchmarkAuditLogRecordInTransaction(b *testing.B) {
	db := sqldbtest.Postgres(b)
	l := audit.NewLog(store.NewAuditLog(db), nil)
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx := audit.WithSource(context.Background(), audit.Source{RequestID: fmt.Sprintf("bench-%012d", n.Add(1))})
			err := db.InTx(ctx, func(ctx context.Context) error {
				return l.Record(ctx, audit.Entry{ActorID: "u", Action: "referral.create", ResourceType: "referral",
					ResourceID: "r", PatientID: "p", Outcome: audit.Success})
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
