package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"duikou/consult"
	"duikou/internal/attachments"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/blob"
	"duikou/internal/consults"
	"duikou/internal/demo"
	"duikou/internal/directory"
	"duikou/internal/httpapi"
	"duikou/internal/kv"
	"duikou/internal/patient"
	"duikou/internal/program"
	"duikou/internal/programs"
	"duikou/internal/queue"
	"duikou/internal/referrals"
	"duikou/internal/rtc"
	"duikou/internal/secret"
	"duikou/internal/store"
	"duikou/referral"
	"duikou/referral/icd10"
)

// services are the domain services of one instance.
type services struct {
	audit     *audit.Log
	auth      *auth.Service
	directory *directory.Service
	patients  *patient.Service
	referrals *referrals.Service
	beds      *referrals.Beds
	files     *attachments.Service
	consults  *consults.Service
	programs  *programs.Service
}

// directoryCacheTTL bounds how long a hospital or pairing changed through
// another instance may still be seen as it was (directory.ReadCache).
const directoryCacheTTL = 5 * time.Second

// wire builds the domain services on the open database and Redis.
func (a *App) wire(ctx context.Context, d *httpapi.Deps) error {
	key, err := a.dataKey()
	if err != nil {
		return err
	}
	box, err := secret.New(key)
	if err != nil {
		return err
	}

	// One set of deadlines for the service (which stamps them on tickets),
	// the relay's rebuild and the watcher. A Config built in code without
	// them (tests) gets the program's defaults.
	deadlines := a.cfg.ReferralDeadlines
	if deadlines == (referral.Deadlines{}) {
		deadlines = referral.DefaultDeadlines()
	}
	if err := deadlines.Validate(); err != nil {
		return err
	}
	// Likewise the remote sessions' response deadlines: the service stamps
	// them, the watcher judges by them.
	sessionDeadlines := a.cfg.SessionDeadlines
	if sessionDeadlines == (consult.Deadlines{}) {
		sessionDeadlines = consult.DefaultDeadlines()
	}
	if err := sessionDeadlines.Validate(); err != nil {
		return err
	}

	s := &a.svc
	s.audit = audit.NewLog(store.NewAuditLog(a.DB), nil)
	// Every request's reach and every referral's route read hospitals and
	// pairings: they are kept for a few seconds per instance (see
	// directory.ReadCache for how stale they may be); the directory's own
	// changes read the database and empty the cache.
	dirCache := directory.NewReadCache(store.NewDirectory(a.DB), directoryCacheTTL)
	s.directory = directory.NewService(a.DB, dirCache.Forgetting(store.NewDirectory(a.DB)), s.audit)
	reach := directory.NewService(a.DB, dirCache, s.audit).Reach
	s.patients = patient.NewService(a.DB, store.NewPatients(a.DB), box, s.audit)
	s.referrals = referrals.NewService(a.DB, store.NewReferrals(a.DB), s.audit,
		referrals.NewDirectoryRoutes(dirCache, nil), nil, deadlines)
	s.beds = referrals.NewBeds(s.referrals, store.NewReferrals(a.DB), store.NewDirectory(a.DB))
	blobs, err := a.openBlobs()
	if err != nil {
		return err
	}
	// Referral tickets and remote sessions carry files to their parties,
	// pairing agreements their signed documents to both hospitals.
	s.files = attachments.NewService(a.DB, store.NewAttachments(a.DB), blobs, s.audit, nil,
		store.NewReferrals(a.DB), store.NewConsults(a.DB), store.NewProgram(a.DB))
	// Remote sessions draft up-referrals through the referral service, so a
	// draft from an opinion is checked and audited like any other.
	s.consults = consults.NewService(a.DB, store.NewConsults(a.DB), s.audit, s.patients, s.directory, s.referrals, sessionDeadlines, nil)
	// Each instance keeps the sessions it read for a second; a logout or a
	// user change anywhere is announced on this signal so that every
	// instance drops them at once.
	sessionNotices := kv.NewSignal(a.KV, "auth-sessions")
	s.auth, err = auth.NewService(auth.Config{
		Store:   store.NewUsers(a.DB),
		Audit:   s.audit,
		Limiter: kv.NewLimiter(a.KV),
		Reach:   reach,
		CSRFKey: box.Derive("csrf"),
		Log:     a.log,
		Notices: sessionNotices,

		SessionCache: a.cfg.SessionCache,
	})
	if err != nil {
		return err
	}
	listening := make(chan struct{})
	go sessionNotices.Run(a.stopping, s.auth.ForgetSessions, listening)
	// Serve once the instance hears the others' notices (a Redis that does
	// not answer leaves the cache's second as the bound).
	select {
	case <-listening:
	case <-time.After(5 * time.Second):
		a.log.Warn("not subscribed to session notices yet; other instances' logouts reach this one within a second")
	case <-ctx.Done():
		return ctx.Err()
	}

	d.Audit = s.audit
	d.AuditLog = s.audit
	d.Auth = s.auth
	d.Directory = s.directory
	d.Patients = s.patients
	d.Referrals = s.referrals
	d.Attachments = s.files
	queues := queue.New(a.KV, queue.Options{AgingAfter: a.cfg.ReferralAging})
	d.BedPools = s.beds
	desks := referrals.NewDesks(s.referrals, queues)
	d.Queues = desks
	d.QueueStream = desks
	d.ReferralStream = referrals.NewChanges(s.referrals, queues)
	d.SessionStream = consults.NewChanges(s.consults, queues)
	d.Stopping = a.stopping
	if d.ICD10, err = icd10.Load(); err != nil {
		return err
	}
	d.Slips = referrals.NewSlips(s.referrals, store.NewPatients(a.DB), store.NewDirectory(a.DB), store.NewUsers(a.DB))
	// The program's records; an agreement's reserved beds set the referral
	// bed pools in the agreement's transaction. A Config built in code
	// without program terms (tests) gets the program's defaults.
	terms := a.cfg.Program
	if terms.Criteria == nil {
		terms = program.DefaultConfig()
	}
	s.programs, err = programs.NewService(a.DB, store.NewProgram(a.DB), store.NewDirectory(a.DB), store.NewUsers(a.DB),
		store.NewAttachments(a.DB), s.audit, s.beds, terms, nil)
	if err != nil {
		return err
	}
	d.Program = s.programs
	// Reports read the records, Duikou's own sessions and the referral
	// tickets (through the referral statistics' tally).
	d.ProgramReports = programs.NewReports(store.NewProgram(a.DB), store.NewDirectory(a.DB), store.NewUsers(a.DB),
		store.NewConsults(a.DB), store.NewReferrals(a.DB), s.audit, terms, nil)
	d.ReferralStats = referrals.NewStats(store.NewReferrals(a.DB), s.audit, nil, deadlines, 0)
	d.Sessions = s.consults
	// Every instance relays: the queue applies each change once whatever
	// the number of deliveries, and the relays share the outbox rows.
	relay := referrals.NewRelay(a.DB, store.NewReferrals(a.DB), queues, deadlines, a.log)
	s.referrals.OnChange(relay.Wake)
	go relay.Run(a.stopping, 250*time.Millisecond, 30*time.Second)
	// Session changes and escalations reach the hospitals taking part the
	// same way, through their per-hospital channels.
	sessionRelay := consults.NewRelay(a.DB, store.NewConsults(a.DB), queues, a.log)
	go sessionRelay.Run(a.stopping, 250*time.Millisecond)
	// Every instance runs the watcher; the lease lets one tick at a time.
	// The remote sessions' deadlines, and the sweep that closes room
	// connections of instances that died holding them, are sources of the
	// same watcher, under the same lease (its name predates them and is
	// kept, so instances of both versions elect one leader during a rolling
	// upgrade).
	lease, err := kv.NewLease(a.KV, "referral-deadlines", referrals.NewInstanceID(), 15*time.Second)
	if err != nil {
		return err
	}
	webhook := a.cfg.EscalationWebhook != ""
	sessionWatcher := consults.NewWatcher(a.DB, store.NewConsults(a.DB), s.audit, sessionDeadlines,
		consults.WatcherOptions{Webhook: webhook, Log: a.log})
	// The one outbox (referral and session changes, escalations, webhook
	// deliveries) is purged of published messages by the leader alone. A
	// Config built in code without a retention (tests) gets the default.
	purge := referrals.NewOutboxPurge(store.NewReferrals(a.DB), referrals.PurgeOptions{Retention: a.cfg.OutboxRetention, Log: a.log})
	// Login sessions that ended long ago are purged the same way.
	sessionPurge := auth.NewSessionPurge(store.NewUsers(a.DB), auth.PurgeOptions{Log: a.log})
	watcher := referrals.NewWatcher(a.DB, store.NewReferrals(a.DB), s.audit, lease, deadlines,
		referrals.WatcherOptions{Webhook: webhook, Log: a.log, Sources: []referrals.Source{sessionWatcher, purge, sessionPurge,
			rtc.NewPresenceSweep(a.DB, store.NewConsults(a.DB), s.audit, rtc.SweepOptions{Log: a.log})}})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		watcher.Run(a.stopping, 2*time.Second)
	}()
	// Close waits for the watcher to give its lease up before Redis closes,
	// so a restarted or remaining instance takes over at once.
	a.closers = append(a.closers, func() {
		select {
		case <-watching:
		case <-time.After(5 * time.Second):
		}
	})
	if a.cfg.EscalationWebhook != "" {
		// Deliveries given up stay in the outbox, failed, with their last
		// error; the count is what an alert watches.
		gaveUp := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duikou_escalation_webhook_failed_total",
			Help: "Escalation webhook deliveries given up after their attempts or age, by outbox topic.",
		}, []string{"topic"})
		if err := d.Metrics.Register(gaveUp); err != nil {
			return err
		}
		hook := referrals.NewWebhook(store.NewReferrals(a.DB), a.cfg.EscalationWebhook,
			referrals.WebhookOptions{Secret: a.cfg.EscalationWebhookSecret, Log: a.log,
				Topics: []string{referrals.TopicEscalationWebhook, consults.TopicEscalationWebhook},
				GaveUp: func(topic string) { gaveUp.WithLabelValues(topic).Inc() }})
		go hook.Run(a.stopping, time.Second)
	}
	if err := a.wireRTC(box, d); err != nil {
		return fmt.Errorf("remote sessions: %w", err)
	}
	keys := store.NewIdempotencyKeys(a.DB, 0)
	d.Idempotency = keys
	d.Tx = a.DB
	go a.every(time.Hour, func(ctx context.Context) {
		if _, err := keys.Expire(ctx, time.Now().UTC()); err != nil {
			a.log.Warn("expiring idempotency keys", "err", err)
		}
	})

	if a.cfg.Demo {
		logins, err := demo.Load(ctx, demo.Services{Directory: s.directory, Auth: s.auth, Beds: s.beds, Clinics: s.consults})
		if err != nil {
			return fmt.Errorf("load demo data: %w", err)
		}
		a.demoLogins = logins
	}
	return nil
}

// every runs job each period until the instance stops. Jobs here are
// idempotent clean-ups, safe when every instance runs them.
func (a *App) every(period time.Duration, job func(ctx context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-a.stopping.Done():
			return
		case <-t.C:
			job(a.stopping)
		}
	}
}

// dataKey is the configured key, or for the embedded default one generated
// once into the data directory.
func (a *App) dataKey() ([]byte, error) {
	if a.cfg.DataKey != "" {
		k, err := secret.ParseKey(a.cfg.DataKey)
		if err != nil {
			return nil, fmt.Errorf("-data-key: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(a.cfg.DataDir, "data.key")
	k, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("data key %s: %w", path, err)
	}
	return k, nil
}

// blobDir is where attachments' bytes live: instances on one PostgreSQL
// share it by mounting one data directory.
func (a *App) blobDir() string { return filepath.Join(a.cfg.DataDir, "blobs") }

// openBlobs opens the blob store. It is the seam for an object store: a
// setting would choose one here, behind the same attachments.Blobs.
func (a *App) openBlobs() (attachments.Blobs, error) {
	d, err := blob.OpenDir(a.blobDir())
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DemoLogins lists the demo accounts after a -demo start.
func (a *App) DemoLogins() []demo.Login { return a.demoLogins }

// VerifyAudit checks the audit log's hash chains.
func (a *App) VerifyAudit(ctx context.Context) (audit.Report, error) {
	return a.svc.audit.Verify(ctx)
}
