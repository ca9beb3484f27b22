package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/sqldb"
)

// Limiter bounds how often a key may act within a window; kv.Limiter is one.
type Limiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error)
}

// ReachFunc returns the hospitals a hospital is paired with, whose data its
// users may see. Provided by the directory.
type ReachFunc func(ctx context.Context, hospitalID string) (map[string]bool, error)

// Config is what the Service is built from. Zero durations and limits take
// the defaults noted on each field.
type Config struct {
	Store   Store          // required
	Audit   audit.Recorder // required
	Limiter Limiter        // nil: login attempts are not rate limited
	Reach   ReachFunc      // nil: users reach only their own hospital
	CSRFKey []byte         // required, at least 32 bytes, shared by every instance
	Clock   func() time.Time
	Log     *slog.Logger
	// SessionCache is how long the instance reuses a session it read;
	// zero: SessionCacheTTL.
	SessionCache time.Duration
	// Notices tells the other instances sharing the database that sessions
	// or users changed here, so they drop what they keep in memory (they
	// call ForgetSessions on hearing it). nil: this instance is alone.
	Notices Notices

	Passwords       PasswordParams // default DefaultPasswordParams()
	SessionTTL      time.Duration  // absolute session lifetime, default 12 h
	IdleTimeout     time.Duration  // session ends after this long unused, default 30 min
	LoginsPerMinute int            // login attempts per client address, default 20
	MaxFailedLogins int            // consecutive failures before the lock, default 5
	LockFor         time.Duration  // lock duration, default 15 min
}

// Service is identity and access: login, sessions, and user administration.
type Service struct {
	store   Store
	audit   audit.Recorder
	limiter Limiter
	reach   ReachFunc
	csrfKey []byte
	clock   func() time.Time
	log     *slog.Logger

	params      PasswordParams
	sessionTTL  time.Duration
	idle        time.Duration
	loginsPerMn int
	maxFailures int
	lockFor     time.Duration

	// dummyHash is verified when the username is unknown so that an unknown
	// user costs the same time as a wrong password and timing tells nothing.
	dummyHash string

	sessions sessionCache
	notices  Notices
}

// Notices carries "sessions changed" between instances (kv.Signal).
type Notices interface {
	Raise(ctx context.Context) error
}

// ForgetSessions drops every session this instance keeps in memory; call
// it when another instance announces a change (Config.Notices).
func (s *Service) ForgetSessions() { s.sessions.forget() }

// sessionsChanged is called in the transaction of a change to sessions or
// users. Once the outermost transaction has committed (a request's
// idempotency transaction may enclose the change's own), this instance
// forgets at once, the others when the notice reaches them (and within
// SessionCacheTTL should it not); a change rolled back announces nothing.
// Forgetting any earlier would let a read of the old rows, made before the
// commit, be kept again.
func (s *Service) sessionsChanged(ctx context.Context) {
	sqldb.AfterCommit(ctx, func() {
		s.sessions.forget()
		if s.notices == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := s.notices.Raise(ctx); err != nil {
			s.log.WarnContext(ctx, "session change not announced to other instances; they see it within the session cache's time", "err", err)
		}
	})
}

// touchEvery bounds writes of last_seen_at: at most one per session per minute.
const touchEvery = time.Minute

// NewService checks cfg and builds the service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("auth: Store and Audit are required")
	}
	if len(cfg.CSRFKey) < 32 {
		return nil, errors.New("auth: the CSRF key must be at least 32 bytes")
	}
	s := &Service{
		store: cfg.Store, audit: cfg.Audit, limiter: cfg.Limiter, reach: cfg.Reach,
		csrfKey: append([]byte(nil), cfg.CSRFKey...), clock: cfg.Clock, log: cfg.Log, notices: cfg.Notices,
		sessions: sessionCache{ttl: cfg.SessionCache},
		params:   cfg.Passwords, sessionTTL: cfg.SessionTTL, idle: cfg.IdleTimeout,
		loginsPerMn: cfg.LoginsPerMinute, maxFailures: cfg.MaxFailedLogins, lockFor: cfg.LockFor,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.params == (PasswordParams{}) {
		s.params = DefaultPasswordParams()
	}
	if !s.params.valid() {
		return nil, fmt.Errorf("auth: invalid password parameters %+v", s.params)
	}
	if s.sessionTTL <= 0 {
		s.sessionTTL = 12 * time.Hour
	}
	if s.idle <= 0 {
		s.idle = 30 * time.Minute
	}
	if s.loginsPerMn <= 0 {
		s.loginsPerMn = 20
	}
	if s.maxFailures <= 0 {
		s.maxFailures = 5
	}
	if s.lockFor <= 0 {
		s.lockFor = 15 * time.Minute
	}
	dummy := make([]byte, 24)
	if _, err := rand.Read(dummy); err != nil {
		return nil, err
	}
	h, err := hashPassword(base64.RawURLEncoding.EncodeToString(dummy), s.params)
	if err != nil {
		return nil, err
	}
	s.dummyHash = h
	return s, nil
}

// now is the clock at the precision both databases keep.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// LoginResult is a new session. Token is shown to the client once and never
// stored; CSRFToken must accompany unsafe cookie-authenticated requests.
type LoginResult struct {
	Token     string
	CSRFToken string
	ExpiresAt time.Time
	Principal Principal
}

var errWrongCredentials = apperr.Unauthenticated("wrong username or password")

// maxLoginField bounds what a login attempt may make us hash or store.
const maxLoginField = 1024

// Login checks the password and opens a session. An unknown username and a
// wrong password fail alike and take the same time. Repeated failures lock
// the account; a locked account is refused even with the right password.
func (s *Service) Login(ctx context.Context, username, password, clientAddr, userAgent string) (LoginResult, error) {
	if s.limiter != nil {
		ok, _, err := s.limiter.Allow(ctx, "login:addr:"+clientAddr, s.loginsPerMn, time.Minute)
		if err != nil {
			s.log.WarnContext(ctx, "login rate limiter unavailable", "err", err)
		}
		if !ok {
			return LoginResult{}, apperr.ErrRateLimited
		}
	}
	username = normalizeUsername(username)
	if username == "" || password == "" {
		var v apperr.Invalid
		if username == "" {
			v.Add("username", "is required")
		}
		if password == "" {
			v.Add("password", "is required")
		}
		return LoginResult{}, v.Err()
	}
	if len(userAgent) > 512 {
		userAgent = truncateUTF8(userAgent, 512)
	}
	now := s.now()
	entry := audit.Entry{At: now, ResourceType: "user", ClientAddr: clientAddr, RequestID: audit.SourceFrom(ctx).RequestID}

	var u User
	hash := s.dummyHash
	known := false
	if len(username) <= maxLoginField && len(password) <= maxLoginField {
		var err error
		u, hash, err = s.store.UserByUsername(ctx, username)
		switch {
		case err == nil:
			known = true
		case errors.Is(err, apperr.ErrNotFound):
			hash = s.dummyHash
		default:
			return LoginResult{}, err
		}
	}
	if len(password) > maxLoginField {
		password = password[:maxLoginField]
	}
	ok, stale, err := verifyPassword(password, hash, s.params)
	if err != nil {
		return LoginResult{}, fmt.Errorf("verify password of user %s: %w", u.ID, err)
	}

	if !known {
		entry.Action, entry.Outcome, entry.Detail = audit.LoginFailed, audit.Failure, "unknown username"
		if err := s.audit.Record(ctx, entry); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, errWrongCredentials
	}
	entry.ActorID, entry.ActorHospitalID, entry.ResourceID = u.ID, u.HospitalID, u.ID

	switch {
	case u.LockedAt(now):
		entry.Action, entry.Outcome, entry.Detail = audit.LoginFailed, audit.Denied, "account locked"
		if err := s.audit.Record(ctx, entry); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, errLocked
	case u.Disabled:
		entry.Action, entry.Outcome, entry.Detail = audit.LoginFailed, audit.Denied, "account disabled"
		if err := s.audit.Record(ctx, entry); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, errWrongCredentials
	case !ok:
		return LoginResult{}, s.failLogin(ctx, u, entry)
	}

	token, tokenHash, err := newToken()
	if err != nil {
		return LoginResult{}, err
	}
	sess := Session{
		ID: uuid.Must(uuid.NewV7()).String(), UserID: u.ID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.sessionTTL),
		ClientAddr: clientAddr, UserAgent: userAgent,
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if u.FailedLogins > 0 || u.LockedUntil != nil {
			if err := s.store.ClearFailedLogins(ctx, u.ID); err != nil {
				return err
			}
		}
		if stale {
			// The cost parameters were raised since this hash was made.
			if h, err := hashPassword(password, s.params); err == nil {
				if err := s.store.SetPasswordHash(ctx, u.ID, h, now); err != nil {
					return err
				}
			}
		}
		if err := s.store.CreateSession(ctx, sess, tokenHash); err != nil {
			return err
		}
		entry.Action, entry.Outcome, entry.ResourceType, entry.ResourceID = audit.Login, audit.Success, "session", sess.ID
		return s.audit.Record(ctx, entry)
	})
	if err != nil {
		return LoginResult{}, err
	}
	p, err := s.principal(ctx, u, sess.ID)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Token: token, CSRFToken: s.CSRFToken(sess.ID), ExpiresAt: sess.ExpiresAt, Principal: p}, nil
}

var errLocked = apperr.Locked("the account is locked after repeated failed logins; try again later or ask an administrator")

// failLogin counts a wrong password and locks the account at the threshold;
// the counter, the failure and the lock are recorded in one transaction.
func (s *Service) failLogin(ctx context.Context, u User, entry audit.Entry) error {
	var result LoginFailure
	lockUntil := entry.At.Add(s.lockFor)
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		result, err = s.store.RegisterFailedLogin(ctx, u.ID, entry.At, s.maxFailures, lockUntil)
		if err != nil {
			return err
		}
		entry.Action, entry.Outcome, entry.Detail = audit.LoginFailed, audit.Failure, "wrong password"
		if result == FailureWhileLocked {
			// Another attempt locked the account after this one read it.
			entry.Outcome, entry.Detail = audit.Denied, "account locked"
		}
		if err := s.audit.Record(ctx, entry); err != nil {
			return err
		}
		if result != FailureLocked {
			return nil
		}
		entry.Action, entry.Outcome = audit.Lockout, audit.Success
		entry.Detail = fmt.Sprintf("%d consecutive failed logins; locked until %s",
			s.maxFailures, lockUntil.Format(time.RFC3339))
		return s.audit.Record(ctx, entry)
	})
	if err != nil {
		return err
	}
	if result == FailureCounted {
		return errWrongCredentials
	}
	return errLocked
}

// newToken returns a fresh opaque session token and its SHA-256.
func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, tokenHash(tok), nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

var errNoSession = apperr.Unauthenticated("the session is missing, expired or revoked; log in again")

// Authenticate turns a session token into the caller. Unknown, revoked,
// expired and idle sessions fail, as do those of disabled users. A lock does
// not end sessions already open: it stops password guessing, and must not
// let a guesser throw a doctor out of the work in hand.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 256 {
		return Principal{}, errNoSession
	}
	// The session, its user and the roles come in one read, which this
	// instance reuses for SessionCacheTTL: this runs on every request.
	key := string(tokenHash(token))
	now := s.now()
	c, cached := s.sessions.get(key, now)
	if !cached {
		c.gen = s.sessions.generation()
		var err error
		c.sess, c.user, err = s.store.SessionWithUser(ctx, []byte(key))
		if errors.Is(err, apperr.ErrNotFound) {
			return Principal{}, errNoSession
		}
		if err != nil {
			return Principal{}, err
		}
		c.read = now
	}
	sess, u := c.sess, c.user
	if sess.RevokedAt != nil || !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= s.idle {
		return Principal{}, errNoSession
	}
	if u.Disabled {
		return Principal{}, errNoSession
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, now); err != nil {
			return Principal{}, err
		}
		s.sessions.touched(key, now)
		c.sess.LastSeenAt = now
	}
	if cached {
		return c.principal, nil
	}
	p, err := s.principal(ctx, u, sess.ID)
	if err != nil {
		return Principal{}, err
	}
	c.principal = p
	s.sessions.put(key, c)
	return p, nil
}

func (s *Service) principal(ctx context.Context, u User, sessionID string) (Principal, error) {
	reach := map[string]bool{}
	if s.reach != nil {
		r, err := s.reach(ctx, u.HospitalID)
		if err != nil {
			return Principal{}, fmt.Errorf("reach of hospital %s: %w", u.HospitalID, err)
		}
		for h, ok := range r {
			if ok {
				reach[h] = true
			}
		}
	}
	return Principal{
		UserID: u.ID, Username: u.Username, DisplayName: u.DisplayName, HospitalID: u.HospitalID,
		Roles: append([]Role(nil), u.Roles...), Supervisor: u.Supervisor, SessionID: sessionID, Reach: reach,
	}, nil
}

// Logout ends the caller's session.
func (s *Service) Logout(ctx context.Context, p Principal) error {
	if !p.Authenticated() || p.SessionID == "" {
		return apperr.ErrUnauthenticated
	}
	now := s.now()
	return s.store.InTx(ctx, func(ctx context.Context) error {
		s.sessionsChanged(ctx)
		if err := s.store.RevokeSession(ctx, p.SessionID, now); err != nil {
			return err
		}
		return s.record(ctx, p, audit.Logout, "session", p.SessionID, "")
	})
}

// CSRFToken is derived from the session id, so it needs no storage and
// changes with every session: base64url(HMAC-SHA-256(key, session id)).
func (s *Service) CSRFToken(sessionID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// record writes a successful audit row for an action of p.
func (s *Service) record(ctx context.Context, p Principal, action, resourceType, resourceID, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.audit.Record(ctx, audit.Entry{
		At: s.now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceType, ResourceID: resourceID, Outcome: audit.Success,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
