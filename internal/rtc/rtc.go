// Package rtc lets the people of a remote session into its live room: it
// decides who may join which session and with which permissions, audits the
// join, issues the signalling grant (join token, WebSocket URL, ICE servers
// with short-lived TURN credentials), and records attendance when the
// signalling server reports participants entering and leaving a room. The
// room itself (lobby, media relay, imaging view) is package signaling; the
// session and its parties are package consult.
//
// Who joins, and as what:
//
//   - hosts: the specialists assigned to the session (for a teaching round,
//     its presenter) publish, subscribe, present and admit. They enter at
//     once and let the others in from the lobby.
//   - the requesting hospital's clinicians (county doctors, specialists and
//     dispatched doctors working there: consult's requester roles) publish
//     and subscribe; in an imaging review they may also present, so a host
//     can hand them the shared viewer to point at what they saw.
//   - in a teaching round, clinicians of the invited hospitals watch:
//     subscribe only (they may raise a hand and chat).
//
// A session about a patient could only be scheduled and started with the
// patient's consents to remote consultation and to sharing data with the
// answering hospital (consult.Decide), so joining does not ask again; it is
// audited as an access to the patient's session.
//
// Everyone without admit waits in the lobby until a host admits them; the
// signalling server enforces it. Other staff of the session's hospitals (an
// unassigned specialist of the answering hospital, a referral desk) are
// refused (403); anyone else does not learn the session exists (404). Only
// a live session, or a scheduled one from JoinEarly before its start until
// its end, can be joined (409 otherwise).
//
// Attendance is recorded from the room's hooks, each connection under the
// instance whose signalling server holds it. The instance confirms its open
// connections every ConfirmEvery (KeepAlive); a graceful stop closes them
// through Left. An instance that dies cannot, so PresenceSweep, run by the
// leader of the deadline watcher, closes connections left unconfirmed for
// StaleAfter at their last confirmation: attendance ends when the instance
// was last known to hold the connection, not never.
package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"duikou/consult"
	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/store"
	"duikou/signaling"
)

// Audit actions.
const (
	ActionJoin = "session.join"
	// resourceSession is the audit resource type of a remote session.
	resourceSession = "consult_session"
)

// JoinEarly is how long before its scheduled start a session's room opens:
// the host tests the camera, the county doctor brings the patient in.
const JoinEarly = 15 * time.Minute

// Sessions is what the service needs of the consult store.
type Sessions interface {
	Session(ctx context.Context, id string) (consult.Session, error)
	RecordJoin(ctx context.Context, p consult.Presence, instance string) (string, error)
	RecordLeave(ctx context.Context, id string, at time.Time) error
	ConfirmPresence(ctx context.Context, instance string, at time.Time) ([]string, error)
}

var _ Sessions = (*store.Consults)(nil)

// Role is a participant's part in the room, for the audit detail and the
// client's screen.
type Role string

const (
	Host        Role = "host"
	Participant Role = "participant"
	Viewer      Role = "viewer"
)

// Permissions decides whether p may join s at now, and with what. Errors:
// apperr.ErrNotFound when p's hospital is no party to s, a forbidden error
// when p is of a party but not one of the people in the room, a conflict
// when s cannot be joined now.
func Permissions(s consult.Session, p auth.Principal, now time.Time) (Role, signaling.Perms, error) {
	side := consult.SideOf(s, p)
	if side == consult.NoSide {
		return "", signaling.Perms{}, apperr.ErrNotFound
	}
	// The clinicians who follow a request on the requesting side are those
	// the state machine lets cancel it; the same roles attend from an
	// invited hospital.
	cancel, _ := consult.RuleFor(consult.Cancel, s.Kind)
	clinician := p.Has(cancel.Requester...)
	var role Role
	var perms signaling.Perms
	switch side {
	case consult.Target:
		if !s.Assigned(p.UserID) {
			return "", signaling.Perms{}, apperr.Forbidden("only the specialists assigned to this session join it for the answering hospital")
		}
		role, perms = Host, signaling.Perms{Publish: true, Subscribe: true, Present: true, Admit: true}
	case consult.Requester:
		if !clinician {
			return "", signaling.Perms{}, apperr.Forbidden("only doctors of the requesting hospital join this session")
		}
		role, perms = Participant, signaling.Perms{Publish: true, Subscribe: true, Present: s.Kind == consult.ImagingReview}
	case consult.Attendee:
		if !clinician {
			return "", signaling.Perms{}, apperr.Forbidden("only doctors of an invited hospital watch this teaching round")
		}
		role, perms = Viewer, signaling.Perms{Subscribe: true}
	}
	if err := Joinable(s, now); err != nil {
		return "", signaling.Perms{}, err
	}
	return role, perms, nil
}

// Joinable reports whether s's room is open at now: live, or scheduled and
// within [start − JoinEarly, end).
func Joinable(s consult.Session, now time.Time) error {
	switch s.Status {
	case consult.Live:
		return nil
	case consult.Scheduled:
		if s.Schedule == nil {
			return apperr.Conflict("the session has no time yet")
		}
		opens := s.Schedule.Start.Add(-JoinEarly)
		if now.Before(opens) {
			return apperr.Conflict("the session opens at " + opens.UTC().Format(time.RFC3339) + ", " +
				JoinEarly.String() + " before its start")
		}
		if !now.Before(s.Schedule.End) {
			return apperr.Conflict("the session's scheduled time has passed; schedule it again")
		}
		return nil
	case consult.Requested, consult.Accepted:
		return apperr.Conflict("the session is not scheduled yet")
	}
	return apperr.Conflict("a session that is " + strings.ReplaceAll(string(s.Status), "_", " ") + " cannot be joined")
}

// Ticket is what a participant needs to enter the room.
type Ticket struct {
	// Token goes in the WebSocket's first message (or the subprotocol
	// header), never in a URL; it lives a few minutes.
	Token       string                `json:"token"`
	WSURL       string                `json:"ws_url"`
	ICEServers  []signaling.ICEServer `json:"ice_servers"`
	ExpiresAt   time.Time             `json:"expires_at"`
	Room        string                `json:"room"`
	Role        Role                  `json:"role"`
	Permissions signaling.Perms       `json:"permissions"`
}

// SocketPath is where the room's WebSocket is served.
func SocketPath(room string) string { return "/api/v1/sessions/" + room + "/ws" }

// Config configures the service.
type Config struct {
	Sessions Sessions
	Audit    audit.Recorder
	// Granter issues the tokens and ICE servers; its URL is set per join.
	Granter signaling.Granter
	// BaseURL is the ws:// or wss:// scheme and host clients reach the
	// WebSocket at; empty: the one the join request came to.
	BaseURL string
	// Instance is this server instance's id (its room directory's): the
	// connections its signalling server holds are recorded under it, so
	// that KeepAlive confirms them and PresenceSweep can tell when they
	// went silent. Empty: a random id, made by New. Every connection is
	// held by an instance (store.Consults.RecordJoin), so the sweep can
	// take one nobody confirms for left over.
	Instance string
	Now      func() time.Time
	Log      *slog.Logger
}

// Service joins sessions and records attendance.
type Service struct {
	cfg Config
	log *slog.Logger

	// mu serialises the attendance hooks (which the signalling server calls
	// one after another anyway) with Confirm, database writes included, so
	// that Confirm never takes a connection Left has just closed for one the
	// sweep closed.
	mu   sync.Mutex
	open map[presenceKey]held // connected participants' presence rows
	// leaving holds the leaves that could not be written (presence row →
	// leave time). Confirm tries them again before it confirms, which would
	// otherwise keep those rows open for as long as this instance lives.
	leaving map[string]time.Time
}

type presenceKey struct{ room, participant string }

// held is a connected participant's open presence row.
type held struct{ id, hospital string }

// New builds the service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Instance == "" {
		cfg.Instance = uuid.NewString()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log, open: map[presenceKey]held{}, leaving: map[string]time.Time{}}
}

// Join lets p into session id's room: it checks p's part in the session
// and the session's state, writes the join to the audit log (with the
// patient, for a session about one) and issues the grant. requestBase is
// the ws(s)://host the request came to, used when no BaseURL is set.
// Refusals are audited too.
func (s *Service) Join(ctx context.Context, p auth.Principal, id, requestBase string) (Ticket, error) {
	sess, err := s.cfg.Sessions.Session(ctx, id)
	if err != nil {
		return Ticket{}, err
	}
	role, perms, err := Permissions(sess, p, s.cfg.Now())
	if err != nil {
		action, detail := ActionJoin, err.Error()
		if errors.Is(err, apperr.ErrNotFound) {
			action, detail = audit.AccessDenied, "not a party to the session"
		}
		if aerr := s.record(ctx, p, action, sess, audit.Denied, detail); aerr != nil {
			return Ticket{}, aerr
		}
		return Ticket{}, err
	}
	if err := s.record(ctx, p, ActionJoin, sess, audit.Success, string(role)); err != nil {
		return Ticket{}, err
	}
	base := s.cfg.BaseURL
	if base == "" {
		base = requestBase
	}
	g := s.cfg.Granter
	g.URL = strings.TrimRight(base, "/") + SocketPath(sess.ID)
	name := p.DisplayName
	if name == "" {
		name = p.Username
	}
	gr, err := g.Grant(signaling.Claims{Room: sess.ID, Participant: p.UserID, Name: name, Hospital: p.HospitalID, Perms: perms})
	if err != nil {
		return Ticket{}, err
	}
	if gr.ICEServers == nil {
		gr.ICEServers = []signaling.ICEServer{} // none configured: host candidates only
	}
	return Ticket{Token: gr.Token, WSURL: gr.URL, ICEServers: gr.ICEServers, ExpiresAt: gr.ExpiresAt,
		Room: sess.ID, Role: role, Permissions: perms}, nil
}

func (s *Service) record(ctx context.Context, p auth.Principal, action string, sess consult.Session, outcome audit.Outcome, detail string) error {
	src := audit.SourceFrom(ctx)
	return s.cfg.Audit.Record(ctx, audit.Entry{
		At: s.cfg.Now(), ActorID: p.UserID, ActorHospitalID: p.HospitalID, Action: action,
		ResourceType: resourceSession, ResourceID: sess.ID, PatientID: sess.PatientID, Outcome: outcome,
		RequestID: src.RequestID, ClientAddr: src.ClientAddr, Detail: detail,
	})
}

// hookTimeout bounds one attendance write: the hooks run one after another.
const hookTimeout = 5 * time.Second

// Joined records a participant entering a room (signaling.Config.OnJoin).
func (s *Service) Joined(room string, p signaling.ParticipantInfo, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.cfg.Sessions.RecordJoin(ctx, consult.Presence{SessionID: room, UserID: p.ID, HospitalID: p.Hospital, JoinedAt: at.UTC()}, s.cfg.Instance)
	if err != nil {
		s.log.Warn("rtc: record attendance", "session", room, "user_id", p.ID, "err", err)
		return
	}
	s.open[presenceKey{room, p.ID}] = held{id, p.Hospital}
}

// Left closes a participant's presence (signaling.Config.OnLeave). A
// presence the sweep closed already keeps the sweep's time.
func (s *Service) Left(room, participant string, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := presenceKey{room, participant}
	h, ok := s.open[k]
	if !ok {
		return // its join was not recorded
	}
	delete(s.open, k)
	if err := s.cfg.Sessions.RecordLeave(ctx, h.id, at.UTC()); err != nil {
		s.log.Warn("rtc: record leaving", "session", room, "user_id", participant, "err", err)
		if !errors.Is(err, apperr.ErrNotFound) {
			s.leaving[h.id] = at.UTC()
		}
	}
}

// ConfirmEvery is how often an instance confirms the connections it holds
// (KeepAlive): one UPDATE of its open presence rows per period.
const ConfirmEvery = 30 * time.Second

// confirmTimeout bounds one confirmation, which after an outage may write a
// leave or a new presence per connection; the next one goes on from there.
const confirmTimeout = ConfirmEvery / 2

// KeepAlive confirms this instance's open connections every ConfirmEvery
// until ctx ends. When the instance stops gracefully its rooms close and
// Left closes them; when it dies, its confirmations stop and PresenceSweep
// closes them at the last one.
func (s *Service) KeepAlive(ctx context.Context) {
	t := time.NewTicker(ConfirmEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, confirmTimeout)
		if err := s.Confirm(cctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rtc: confirm open connections", "err", err)
		}
		cancel()
	}
}

// Confirm records that this instance still holds its open connections. A
// connection it holds that the database no longer has open was closed by
// the sweep, which took this instance for dead (it was paused, or could not
// reach the database, for longer than StaleAfter): the participant is
// still here, so a new presence starts now. The closed one keeps the
// sweep's time, and the gap between them is time no instance vouched for.
func (s *Service) Confirm(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for id, at := range s.leaving {
		// One that fails again is confirmed below with the others; its
		// leave is written at its own time when it goes through.
		if err := s.cfg.Sessions.RecordLeave(ctx, id, at); err != nil && !errors.Is(err, apperr.ErrNotFound) {
			errs = append(errs, fmt.Errorf("record a leave again: %w", err))
			continue
		}
		delete(s.leaving, id)
	}
	now := s.cfg.Now().UTC()
	confirmed, err := s.cfg.Sessions.ConfirmPresence(ctx, s.cfg.Instance, now)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	still := make(map[string]bool, len(confirmed))
	for _, id := range confirmed {
		still[id] = true
	}
	for k, h := range s.open {
		if still[h.id] {
			continue
		}
		s.log.Warn("rtc: a connection held here was closed as silent; recording it again from now",
			"session", k.room, "user_id", k.participant, "closed_presence", h.id)
		id, err := s.cfg.Sessions.RecordJoin(ctx, consult.Presence{SessionID: k.room, UserID: k.participant, HospitalID: h.hospital, JoinedAt: now}, s.cfg.Instance)
		if err != nil {
			errs = append(errs, err) // the next confirmation tries again
			continue
		}
		s.open[k] = held{id, h.hospital}
	}
	return errors.Join(errs...)
}
