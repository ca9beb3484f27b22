package rtc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"duikou/internal/audit"
	"duikou/internal/sqldb"
	"duikou/internal/store"
)

// StaleAfter is how long a held connection may go unconfirmed before the
// sweep takes its instance for dead. Three confirmation periods: one or two
// confirmations lost to a slow or briefly unreachable database, a pause, or
// a few seconds of clock skew between instances close nothing, while a dead
// instance's connections end within two minutes of its last word.
const StaleAfter = 3 * ConfirmEvery

// ActionCloseSilent is the audit action of a connection the sweep closed.
const ActionCloseSilent = "session.presence_close"

// SweepStore is what the sweep needs of storage; store.Consults implements it.
type SweepStore interface {
	SweepPresence(ctx context.Context, before time.Time, limit int) ([]store.SweptPresence, error)
}

var _ SweepStore = (*store.Consults)(nil)

// SweepOptions tune the sweep; zero values take the defaults.
type SweepOptions struct {
	// Batch bounds the connections one transaction closes (default 200).
	Batch int
	// Now is the clock (default sqldb.Now).
	Now func() time.Time
	Log *slog.Logger
}

// PresenceSweep closes the connections of instances that died without
// closing them: an open presence row its instance has not confirmed for
// StaleAfter is closed at its last confirmation, the last moment the
// instance is known to have held it. A graceful stop closes its rows
// itself (Service.Left), so the sweep only ever sees a crashed or killed
// instance's, or a live one's that could not confirm for that long (which
// then records its participants again, see Service.Confirm). It also
// closes, at their joining, rows left open before connections were held by
// instances (migration 0014): no instance holds them, so nobody would.
//
// It is a source of the deadline watcher (referrals.Watcher satisfies
// referrals.Source), so the one holder of that lease sweeps. As there,
// correctness does not rest on the lease: a row is closed by an update
// that rechecks it is open and unconfirmed, so two sweeps, or a sweep and a
// late confirmation or leave, close it once, and only the transaction whose
// update closed it writes its audit row. It keeps no state between ticks.
type PresenceSweep struct {
	db    sqldb.DB
	st    SweepStore
	audit audit.Recorder
	opt   SweepOptions
}

// NewPresenceSweep builds the sweep.
func NewPresenceSweep(db sqldb.DB, st SweepStore, rec audit.Recorder, opt SweepOptions) *PresenceSweep {
	if opt.Batch <= 0 {
		opt.Batch = 200
	}
	if opt.Now == nil {
		opt.Now = sqldb.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &PresenceSweep{db: db, st: st, audit: rec, opt: opt}
}

// Name names the sweep in the watcher's log.
func (w *PresenceSweep) Name() string { return "silent room connections" }

// Lead has nothing to prepare: every tick reads what is stale now.
func (w *PresenceSweep) Lead(context.Context) error { return nil }

// Tick closes every connection unconfirmed for StaleAfter, a batch per
// transaction with an audit row each, and logs how many. It returns 0: the
// watcher counts escalations raised, and closing a connection raises none.
func (w *PresenceSweep) Tick(ctx context.Context) (int, error) {
	now := w.opt.Now()
	closed := 0
	defer func() {
		if closed > 0 {
			w.opt.Log.InfoContext(ctx, "closed connections their instance stopped confirming", "count", closed)
		}
	}()
	for {
		n := 0
		err := w.db.InTx(ctx, func(ctx context.Context) error {
			swept, err := w.st.SweepPresence(ctx, now.Add(-StaleAfter), w.opt.Batch)
			if err != nil {
				return err
			}
			n = len(swept)
			for _, p := range swept {
				when := "when instance " + p.Instance + " last confirmed it"
				if p.Instance == "" {
					when = "when it joined: no instance held it to confirm or close it"
				}
				if err := w.audit.Record(ctx, audit.Entry{
					At: now, ActorID: "system", ActorHospitalID: p.HospitalID, Action: ActionCloseSilent,
					ResourceType: resourceSession, ResourceID: p.SessionID, Outcome: audit.Success,
					Detail: fmt.Sprintf("connection %s of user %s closed at %s, %s",
						p.ID, p.UserID, p.LeftAt.UTC().Format(time.RFC3339), when),
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("presence sweep: %w", err)
		}
		closed += n
		if n < w.opt.Batch {
			return 0, nil
		}
	}
}
