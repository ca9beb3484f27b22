package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"duikou/internal/apperr"
	"duikou/internal/audit"
	"duikou/internal/auth"
	"duikou/internal/directory"
	"duikou/internal/patient"
)

// openAPIOpsAuth signs in one user per role: the bearer token is the role's
// name. Nothing else of the auth service is implemented, and the domain
// services are typed nil pointers: a request that passes the gates reaches
// its handler, whose first call into a service panics and is answered 500 by
// the recoverer. That is still "not refused" for these tests, and whatever
// the handler checks before calling the service (If-Match) is observable.
type openAPIOpsAuth struct{ AuthService }

func (openAPIOpsAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	r := auth.Role(token)
	if !r.Valid() {
		return auth.Principal{}, apperr.ErrUnauthenticated
	}
	return auth.Principal{UserID: "user-" + token, Username: token, HospitalID: "hospital-1",
		Roles: []auth.Role{r}, SessionID: "session-" + token}, nil
}

func (openAPIOpsAuth) CSRFToken(string) string { return "csrf" }

func openAPIOpsHandler() http.Handler {
	return New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), Auth: openAPIOpsAuth{},
		Directory: (*directory.Service)(nil), Patients: (*patient.Service)(nil), AuditLog: (*audit.Log)(nil)}).Handler()
}

// openAPIOpsCall sends op to h as the holder of role ("" for anonymous),
// with path parameters filled in and an empty JSON object as body.
func openAPIOpsCall(h http.Handler, op operation, role auth.Role, header map[string]string) int {
	path := op.Path
	for _, name := range pathParams(op.Path) {
		path = strings.ReplaceAll(path, "{"+name+"}", "0190a0b0-0000-7000-8000-000000000001")
	}
	req := httptest.NewRequest(op.Method, path, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+string(role))
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// The Roles the document names for an operation are the roles its gate
// admits: every other role is refused with 403 before the handler runs, and
// an operation documented for any signed-in user refuses no role.
func TestOpenAPIRolesAreTheRolesTheGateAdmits(t *testing.T) {
	h := openAPIOpsHandler()
	for _, op := range operations() {
		if op.Public {
			continue
		}
		for _, role := range auth.Roles {
			admitted := len(op.Roles) == 0 || slices.Contains(op.Roles, role)
			code := openAPIOpsCall(h, op, role, nil)
			if refused := code == http.StatusForbidden; refused == admitted {
				t.Errorf("%s %s as %s: status %d, but the document says the role is admitted=%t (Roles %v)",
					op.Method, op.Path, role, code, admitted, op.Roles)
			}
		}
	}
}

// Public operations answer without a session; every other one asks for it.
func TestOpenAPIPublicOperationsAreTheOnesWithoutASession(t *testing.T) {
	h := openAPIOpsHandler()
	for _, op := range operations() {
		code := openAPIOpsCall(h, op, "", nil)
		if asked := code == http.StatusUnauthorized; asked == op.Public {
			t.Errorf("%s %s anonymously: status %d, but the document says Public=%t", op.Method, op.Path, code, op.Public)
		}
	}
}

// IfMatch marks exactly the operations that demand If-Match (428 without it).
func TestOpenAPIIfMatchIsTheOperationsThatDemandIt(t *testing.T) {
	h := openAPIOpsHandler()
	for _, op := range operations() {
		role := auth.Role("")
		if !op.Public {
			role = auth.Roles[0]
			if len(op.Roles) > 0 {
				role = op.Roles[0]
			}
		}
		code := openAPIOpsCall(h, op, role, nil)
		if demanded := code == http.StatusPreconditionRequired; demanded != op.IfMatch {
			t.Errorf("%s %s without If-Match: status %d, but the document says IfMatch=%t", op.Method, op.Path, code, op.IfMatch)
		}
	}
}

// Every operation has what a reader of the document needs, and names a tag
// from the document's fixed set.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	tags := []string{"auth", "users", "directory", "patients", "referrals", "attachments", "sessions", "program", "audit", "meta"}
	seen := map[string]bool{}
	for _, op := range operations() {
		key := op.Method + " " + op.Path
		if seen[key] {
			t.Errorf("%s is documented twice", key)
		}
		seen[key] = true
		if strings.TrimSpace(op.Summary) == "" {
			t.Errorf("%s has no summary", key)
		}
		if !slices.Contains(tags, op.Tag) {
			t.Errorf("%s has tag %q, want one of %v", key, op.Tag, tags)
		}
		if op.Public && len(op.Roles) > 0 {
			t.Errorf("%s is public yet names roles %v", key, op.Roles)
		}
		for _, r := range op.Roles {
			if !r.Valid() {
				t.Errorf("%s names unknown role %q", key, r)
			}
		}
		if op.Status == http.StatusNoContent && op.Response != nil {
			t.Errorf("%s answers 204 yet documents a response body", key)
		}
		if op.ContentType != "" && op.Response != nil {
			t.Errorf("%s answers %s yet documents a JSON response body", key, op.ContentType)
		}
		if op.Method == http.MethodPatch && op.Request == nil {
			t.Errorf("%s changes a resource yet documents no request body", key)
		}
	}
}
