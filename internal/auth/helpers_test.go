package auth_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/sqldb"
	"duikou/internal/store"
	"duikou/internal/testclock"
)

// recorder keeps audit entries in memory. When fail is set it refuses them,
// to show that the change it records rolls back too.
type recorder struct {
	mu      sync.Mutex
	entries []audit.Entry
	fail    error
}

func (r *recorder) Record(ctx context.Context, e audit.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.entries = append(r.entries, e)
	return nil
}

// actions lists the recorded actions, in order.
func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.Action)
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = nil
}

func (r *recorder) all() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Entry(nil), r.entries...)
}

type fixture struct {
	db       sqldb.DB
	users    *store.Users
	svc      *auth.Service
	clock    *testclock.Clock
	rec      *recorder
	hospital string
	paired   string
	admin    auth.Principal
}

const testPassword = "initial-password-1"

var csrfKey = []byte("0123456789abcdef0123456789abcdef")

// newFixture builds the real service on db with cheap password hashing, a
// hospital paired with one other, and a logged-in administrator.
func newFixture(t *testing.T, db sqldb.DB, tweak ...func(*auth.Config)) *fixture {
	t.Helper()
	f := &fixture{
		db: db, users: store.NewUsers(db), rec: &recorder{},
		clock: testclock.New(time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)),
	}
	f.hospital, f.paired = insertHospital(t, db), insertHospital(t, db)
	cfg := auth.Config{
		Store: f.users, Audit: f.rec, CSRFKey: csrfKey, Clock: f.clock.Now,
		Passwords: auth.CheapPasswordParams(),
		Reach: func(ctx context.Context, hospitalID string) (map[string]bool, error) {
			if hospitalID == f.hospital {
				return map[string]bool{f.paired: true}, nil
			}
			return nil, nil
		},
	}
	for _, fn := range tweak {
		fn(&cfg)
	}
	svc, err := auth.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	created, err := svc.BootstrapAdmin(context.Background(), auth.NewUser{
		Username: "admin", DisplayName: "Administrator", HospitalID: f.hospital, Password: testPassword,
	})
	if err != nil || !created {
		t.Fatalf("bootstrap admin: %v %v", created, err)
	}
	res := f.login(t, "admin", testPassword)
	f.admin = res.Principal
	f.rec.reset()
	return f
}

func insertHospital(t *testing.T, db sqldb.DB) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	now := sqldb.Now()
	_, err := db.Exec(context.Background(), `
		INSERT INTO hospitals (id, name, org_code, tier, province, created_at, updated_at)
		VALUES ($1, $2, $3, 'secondary', 'Guizhou', $4, $4)`, id, "Hospital "+id[:8], "ORG-"+id, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// createUser makes a county doctor (or the given roles) with testPassword.
func (f *fixture) createUser(t *testing.T, username string, roles ...auth.Role) auth.User {
	t.Helper()
	if len(roles) == 0 {
		roles = []auth.Role{auth.CountyDoctor}
	}
	u, err := f.svc.CreateUser(context.Background(), f.admin, auth.NewUser{
		Username: username, DisplayName: strings.ToUpper(username), HospitalID: f.hospital,
		Roles: roles, Password: testPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) login(t *testing.T, username, password string) auth.LoginResult {
	t.Helper()
	res, err := f.svc.Login(context.Background(), username, password, "192.0.2.1", "test-agent")
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return res
}
