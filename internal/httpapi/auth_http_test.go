package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/kv"
	"duikou/internal/kv/kvtest"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/internal/testclock"
)

const authHTTPPassword = "first-password-42"

// authHTTPRecorder keeps audit rows in memory.
type authHTTPRecorder struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (r *authHTTPRecorder) Record(_ context.Context, e audit.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return nil
}

func (r *authHTTPRecorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.Action)
	}
	return out
}

// authHTTPEnv is the real HTTP handler over the real auth service on a
// fresh database, with one hospital and a bootstrapped administrator.
type authHTTPEnv struct {
	t        *testing.T
	h        http.Handler
	svc      *auth.Service
	clock    *testclock.Clock
	rec      *authHTTPRecorder
	logs     *bytes.Buffer
	hospital string
}

func newAuthHTTPEnv(t *testing.T, db sqldb.DB, cfg Config, limiter auth.Limiter) *authHTTPEnv {
	t.Helper()
	e := &authHTTPEnv{t: t, clock: testclock.New(time.Date(2025, 6, 1, 1, 0, 0, 0, time.UTC)),
		rec: &authHTTPRecorder{}, logs: &bytes.Buffer{}}
	e.hospital = uuid.Must(uuid.NewV7()).String()
	now := sqldb.Now()
	if _, err := db.Exec(context.Background(), `
		INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
		VALUES ($1, 'County People''s Hospital', $2, 'secondary', 'Yunnan', $3, $3)`, e.hospital, "ORG-"+e.hospital, now); err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(auth.Config{
		Store: store.NewUsers(db), Audit: e.rec, Limiter: limiter, Clock: e.clock.Now,
		CSRFKey: []byte("an http test key of 32 bytes!!!!"), Passwords: auth.CheapPasswordParams(),
		LoginsPerMinute: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if _, err := svc.BootstrapAdmin(context.Background(), auth.NewUser{
		Username: "root", DisplayName: "Administrator", HospitalID: e.hospital, Password: authHTTPPassword,
	}); err != nil {
		t.Fatal(err)
	}
	var logsMu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&logsMu, e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.h = New(cfg, Deps{Log: log, Auth: svc, Audit: e.rec}).Handler()
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// authHTTPReq is one request: a bearer token or a cookie, optional CSRF token and headers.
type authHTTPReq struct {
	method, path string
	body         any
	bearer       string
	cookie       string
	csrf         string
	header       map[string]string
}

func (e *authHTTPEnv) do(q authHTTPReq) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if q.body != nil {
		b, err := json.Marshal(q.body)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	r := httptest.NewRequest(q.method, q.path, body)
	r.RemoteAddr = "203.0.113.7:40000"
	if q.body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if q.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: q.cookie})
	}
	if q.csrf != "" {
		r.Header.Set(CSRFHeader, q.csrf)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	for _, secret := range []string{authHTTPPassword, "brand-new-password-9", "wrong-password"} {
		if strings.Contains(w.Body.String(), secret) {
			e.t.Errorf("%s %s: a password is in the response: %s", q.method, q.path, w.Body)
		}
	}
	return w
}

func (e *authHTTPEnv) login(username, password string) LoginResponse {
	e.t.Helper()
	w := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/login", body: LoginRequest{username, password}})
	if w.Code != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", username, w.Code, w.Body)
	}
	var res LoginResponse
	authHTTPDecode(e.t, w, &res)
	return res
}

// createUser makes an account through the API as the administrator.
func (e *authHTTPEnv) createUser(adminToken, username string, roles ...auth.Role) UserJSON {
	e.t.Helper()
	w := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/users", bearer: adminToken, body: CreateUserRequest{
		Username: username, DisplayName: "Dr " + username, HospitalID: e.hospital, Roles: roles, Password: authHTTPPassword,
	}})
	if w.Code != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", username, w.Code, w.Body)
	}
	var u UserJSON
	authHTTPDecode(e.t, w, &u)
	return u
}

func authHTTPDecode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
}

func TestAuthHTTPLoginAnswersTheSessionAndSetsTheCookie(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		for _, secure := range []bool{false, true} {
			e.h = New(Config{SecureCookies: secure}, Deps{Log: slog.New(slog.DiscardHandler), Auth: e.svc, Audit: e.rec}).Handler()
			w := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/login", body: LoginRequest{"ROOT", authHTTPPassword}})
			if w.Code != http.StatusOK {
				t.Fatalf("login: %d %s", w.Code, w.Body)
			}
			var res LoginResponse
			authHTTPDecode(t, w, &res)
			if res.Token == "" || res.CSRFToken == "" || res.User.Username != "root" || res.User.HospitalID != e.hospital ||
				len(res.User.Roles) != 1 || res.User.Roles[0] != auth.Admin {
				t.Errorf("login response %+v", res)
			}
			if want := e.clock.Now().Add(12 * time.Hour); !res.ExpiresAt.Equal(want) {
				t.Errorf("expires_at %v, want %v", res.ExpiresAt, want)
			}
			cookies := w.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("cookies %v", cookies)
			}
			c := cookies[0]
			if c.Name != SessionCookie || c.Value != res.Token || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
				c.Path != "/" || c.Secure != secure || !c.Expires.Equal(res.ExpiresAt.Truncate(time.Second)) {
				t.Errorf("cookie %+v (secure config %v)", c, secure)
			}
			// The cookie alone is a session: /auth/me answers with the same user.
			w = e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/auth/me", cookie: res.Token})
			var me MeResponse
			authHTTPDecode(t, w, &me)
			if w.Code != http.StatusOK || me.User.ID != res.User.ID || me.CSRFToken != res.CSRFToken {
				t.Errorf("me: %d %+v", w.Code, me)
			}
		}
	})
}

func TestAuthHTTPLoginFailuresLockTheAccount(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		admin := e.login("root", authHTTPPassword)
		e.createUser(admin.Token, "nurse.li", auth.CountyDoctor)
		attempt := func(password string) int {
			return e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/login", body: LoginRequest{"nurse.li", password}}).Code
		}
		unknown := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/login", body: LoginRequest{"no.such.user", "wrong-password"}})
		if unknown.Code != http.StatusUnauthorized {
			t.Errorf("unknown user: %d", unknown.Code)
		}
		for i := 1; i <= 4; i++ {
			if code := attempt("wrong-password"); code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d, want 401", i, code)
			}
		}
		if code := attempt("wrong-password"); code != http.StatusLocked {
			t.Fatalf("fifth failure: %d, want 423", code)
		}
		if code := attempt(authHTTPPassword); code != http.StatusLocked {
			t.Fatalf("right password while locked: %d, want 423", code)
		}
		e.clock.Advance(15 * time.Minute)
		if code := attempt(authHTTPPassword); code != http.StatusOK {
			t.Fatalf("after the lock period: %d, want 200", code)
		}
		for _, want := range []string{audit.Login, audit.LoginFailed, audit.Lockout} {
			if !strings.Contains(strings.Join(e.rec.actions(), " "), want) {
				t.Errorf("no %s audit row in %v", want, e.rec.actions())
			}
		}
		if strings.Contains(e.logs.String(), "wrong-password") || strings.Contains(e.logs.String(), authHTTPPassword) {
			t.Error("a password reached the log")
		}
	})
}

func TestAuthHTTPLoginRateLimitedPerAddress(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, kv.NewLimiter(kvtest.ForTest(t)))
		codes := map[int]int{}
		for range 11 {
			w := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/login", body: LoginRequest{"someone", "wrong-password"}})
			codes[w.Code]++
		}
		if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 1 {
			t.Errorf("status counts %v, want ten 401 then one 429", codes)
		}
	})
}

func TestAuthHTTPLogoutRevokesTheSession(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		s := e.login("root", authHTTPPassword)
		w := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/logout", bearer: s.Token})
		if w.Code != http.StatusNoContent {
			t.Fatalf("logout: %d %s", w.Code, w.Body)
		}
		if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != SessionCookie || c[0].Value != "" || c[0].MaxAge >= 0 {
			t.Errorf("logout did not clear the cookie: %v", c)
		}
		for _, q := range []authHTTPReq{
			{method: http.MethodGet, path: "/api/v1/auth/me", bearer: s.Token},
			{method: http.MethodGet, path: "/api/v1/auth/me", cookie: s.Token},
			{method: http.MethodPost, path: "/api/v1/auth/logout", bearer: s.Token},
		} {
			if w := e.do(q); w.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with the revoked token: %d, want 401", q.method, q.path, w.Code)
			}
		}
		if !strings.Contains(strings.Join(e.rec.actions(), " "), audit.Logout) {
			t.Errorf("no logout audit row: %v", e.rec.actions())
		}
	})
}

func TestAuthHTTPExpiredSessionsAreRefused(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		me := func(token string) int {
			return e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/auth/me", bearer: token}).Code
		}
		idle := e.login("root", authHTTPPassword)
		e.clock.Advance(30 * time.Minute)
		if code := me(idle.Token); code != http.StatusUnauthorized {
			t.Errorf("idle 30 min: %d, want 401", code)
		}

		busy := e.login("root", authHTTPPassword)
		for elapsed := 25 * time.Minute; elapsed < 12*time.Hour; elapsed += 25 * time.Minute {
			e.clock.Advance(25 * time.Minute)
			if code := me(busy.Token); code != http.StatusOK {
				t.Fatalf("in use at +%v: %d", elapsed, code)
			}
		}
		e.clock.Advance(25 * time.Minute) // past 12 h since login
		if code := me(busy.Token); code != http.StatusUnauthorized {
			t.Errorf("past the absolute expiry: %d, want 401", code)
		}
	})
}

func TestAuthHTTPCookieRequestsNeedTheCSRFToken(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		logout := func(q authHTTPReq) int {
			q.method, q.path = http.MethodPost, "/api/v1/auth/logout"
			return e.do(q).Code
		}
		s := e.login("root", authHTTPPassword)
		other := e.login("root", authHTTPPassword)

		tests := []struct {
			name string
			req  authHTTPReq
			want int
		}{
			{"cookie without the CSRF header", authHTTPReq{cookie: s.Token}, http.StatusForbidden},
			{"cookie with another session's CSRF token", authHTTPReq{cookie: s.Token, csrf: other.CSRFToken}, http.StatusForbidden},
			{"cookie with the right token from a foreign origin", authHTTPReq{cookie: s.Token, csrf: s.CSRFToken,
				header: map[string]string{"Origin": "https://evil.example"}}, http.StatusForbidden},
			{"cookie with the right CSRF token", authHTTPReq{cookie: s.Token, csrf: s.CSRFToken}, http.StatusNoContent},
			{"bearer token without any CSRF header", authHTTPReq{bearer: other.Token}, http.StatusNoContent},
		}
		for _, tt := range tests {
			if got := logout(tt.req); got != tt.want {
				t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
			}
		}
		// Safe methods with a cookie need no CSRF token.
		fresh := e.login("root", authHTTPPassword)
		if w := e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/auth/me", cookie: fresh.Token}); w.Code != http.StatusOK {
			t.Errorf("cookie GET: %d", w.Code)
		}
	})
}

func TestAuthHTTPChangeOwnPassword(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		s := e.login("root", authHTTPPassword)
		change := func(current, next string) *httptest.ResponseRecorder {
			return e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/password", bearer: s.Token,
				body: ChangePasswordRequest{CurrentPassword: current, NewPassword: next}})
		}
		if w := change("wrong-password", "brand-new-password-9"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "current_password") {
			t.Errorf("wrong current password: %d %s", w.Code, w.Body)
		}
		if w := change(authHTTPPassword, "short"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "new_password") {
			t.Errorf("short new password: %d %s", w.Code, w.Body)
		}
		if w := change(authHTTPPassword, "brand-new-password-9"); w.Code != http.StatusNoContent {
			t.Fatalf("change: %d %s", w.Code, w.Body)
		}
		e.login("root", "brand-new-password-9")
	})
}

func TestAuthHTTPUserAdministration(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		e := newAuthHTTPEnv(t, db, Config{}, nil)
		admin := e.login("root", authHTTPPassword).Token
		doctor := e.createUser(admin, "dr.zhang", auth.CountyDoctor)
		doctorToken := e.login("dr.zhang", authHTTPPassword).Token

		// Only administrators reach the user routes.
		for _, q := range []authHTTPReq{
			{method: http.MethodGet, path: "/api/v1/users"},
			{method: http.MethodPost, path: "/api/v1/users", body: CreateUserRequest{Username: "x"}},
			{method: http.MethodGet, path: "/api/v1/users/" + doctor.ID},
			{method: http.MethodPatch, path: "/api/v1/users/" + doctor.ID, body: map[string]any{"supervisor": true}, header: map[string]string{"If-Match": `"1"`}},
			{method: http.MethodPost, path: "/api/v1/users/" + doctor.ID + "/password", body: ResetPasswordRequest{"brand-new-password-9"}},
			{method: http.MethodPost, path: "/api/v1/users/" + doctor.ID + "/unlock"},
		} {
			q.bearer = doctorToken
			if w := e.do(q); w.Code != http.StatusForbidden {
				t.Errorf("county doctor %s %s: %d, want 403", q.method, q.path, w.Code)
			}
			q.bearer = ""
			if w := e.do(q); w.Code != http.StatusUnauthorized {
				t.Errorf("anonymous %s %s: %d, want 401", q.method, q.path, w.Code)
			}
		}

		// Create: validation names every bad field; a good one answers 201 with ETag and Location.
		w := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/users", bearer: admin,
			body: CreateUserRequest{Username: "A B", HospitalID: "nope", Roles: []auth.Role{"surgeon"}, Password: "short"}})
		var prob Problem
		authHTTPDecode(t, w, &prob)
		if w.Code != http.StatusBadRequest || len(prob.Errors) != 5 {
			t.Errorf("bad create: %d %+v", w.Code, prob)
		}
		w = e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/users", bearer: admin,
			body: map[string]any{"username": "x.y", "password_hash": "sneaky"}})
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "password_hash") {
			t.Errorf("unknown field: %d %s", w.Code, w.Body)
		}
		if dup := e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/users", bearer: admin, body: CreateUserRequest{
			Username: "dr.zhang", DisplayName: "Again", HospitalID: e.hospital, Roles: []auth.Role{auth.Specialist}, Password: authHTTPPassword,
		}}); dup.Code != http.StatusConflict {
			t.Errorf("duplicate username: %d", dup.Code)
		}

		// Read with ETag; update needs If-Match.
		path := "/api/v1/users/" + doctor.ID
		w = e.do(authHTTPReq{method: http.MethodGet, path: path, bearer: admin})
		if w.Code != http.StatusOK || w.Header().Get("ETag") != `"1"` {
			t.Errorf("get: %d etag %q", w.Code, w.Header().Get("ETag"))
		}
		if strings.Contains(w.Body.String(), "argon2") {
			t.Error("the password hash is in the response")
		}
		patch := map[string]any{"display_name": "Zhang Wei", "roles": []string{"county_doctor", "referral_desk"}, "supervisor": true}
		if w := e.do(authHTTPReq{method: http.MethodPatch, path: path, bearer: admin, body: patch}); w.Code != http.StatusPreconditionRequired {
			t.Errorf("patch without If-Match: %d", w.Code)
		}
		w = e.do(authHTTPReq{method: http.MethodPatch, path: path, bearer: admin, body: patch, header: map[string]string{"If-Match": `"1"`}})
		var updated UserJSON
		authHTTPDecode(t, w, &updated)
		if w.Code != http.StatusOK || w.Header().Get("ETag") != `"2"` || updated.DisplayName != "Zhang Wei" || !updated.Supervisor || len(updated.Roles) != 2 {
			t.Errorf("patch: %d %q %+v", w.Code, w.Header().Get("ETag"), updated)
		}
		if w := e.do(authHTTPReq{method: http.MethodPatch, path: path, bearer: admin, body: patch, header: map[string]string{"If-Match": `"1"`}}); w.Code != http.StatusPreconditionFailed {
			t.Errorf("patch of a stale version: %d, want 412", w.Code)
		}
		if w := e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/users/" + uuid.Must(uuid.NewV7()).String(), bearer: admin}); w.Code != http.StatusNotFound {
			t.Errorf("unknown user: %d", w.Code)
		}
		if w := e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/users/not-an-id", bearer: admin}); w.Code != http.StatusNotFound {
			t.Errorf("malformed id: %d", w.Code)
		}

		// Lists page with a cursor and filter by role.
		e.createUser(admin, "dr.wang", auth.Specialist)
		var page List[UserJSON]
		w = e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/users?limit=2", bearer: admin})
		authHTTPDecode(t, w, &page)
		if w.Code != http.StatusOK || len(page.Items) != 2 || page.NextCursor == "" {
			t.Fatalf("first page: %d %+v", w.Code, page)
		}
		w = e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/users?limit=2&cursor=" + page.NextCursor, bearer: admin})
		page = List[UserJSON]{}
		authHTTPDecode(t, w, &page)
		if len(page.Items) != 1 || page.Items[0].Username != "dr.wang" || page.NextCursor != "" {
			t.Errorf("second page: %+v", page)
		}
		w = e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/users?role=referral_desk&hospital_id=" + e.hospital, bearer: admin})
		page = List[UserJSON]{}
		authHTTPDecode(t, w, &page)
		if len(page.Items) != 1 || page.Items[0].ID != doctor.ID {
			t.Errorf("by role: %+v", page)
		}
		if w := e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/users?role=surgeon", bearer: admin}); w.Code != http.StatusBadRequest {
			t.Errorf("unknown role filter: %d", w.Code)
		}

		// Reset ends the user's sessions; unlock lifts a lock.
		w = e.do(authHTTPReq{method: http.MethodPost, path: path + "/password", bearer: admin, body: ResetPasswordRequest{"brand-new-password-9"}})
		if w.Code != http.StatusNoContent {
			t.Fatalf("reset: %d %s", w.Code, w.Body)
		}
		if w := e.do(authHTTPReq{method: http.MethodGet, path: "/api/v1/auth/me", bearer: doctorToken}); w.Code != http.StatusUnauthorized {
			t.Errorf("the doctor's session survived the reset: %d", w.Code)
		}
		for range 5 {
			e.do(authHTTPReq{method: http.MethodPost, path: "/api/v1/auth/login", body: LoginRequest{"dr.zhang", "wrong-password"}})
		}
		w = e.do(authHTTPReq{method: http.MethodPost, path: path + "/unlock", bearer: admin})
		var unlocked UserJSON
		authHTTPDecode(t, w, &unlocked)
		if w.Code != http.StatusOK || unlocked.LockedUntil != nil {
			t.Errorf("unlock: %d %+v", w.Code, unlocked)
		}
		e.login("dr.zhang", "brand-new-password-9")

		if strings.Contains(e.logs.String(), authHTTPPassword) || strings.Contains(e.logs.String(), "brand-new-password-9") {
			t.Error("a password reached the log")
		}
	})
}
