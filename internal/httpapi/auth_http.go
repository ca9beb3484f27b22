package httpapi

import (
	"context"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
)

// AuthService is what the API needs of identity and access.
type AuthService interface {
	// Authenticate turns a session token into the caller, or fails with
	// apperr.ErrUnauthenticated (unknown, expired, idle or revoked).
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
	// CSRFToken is the token a browser must echo on unsafe requests.
	CSRFToken(sessionID string) string
}

func (a *API) mountPublicAuth(r chi.Router) {}

func (a *API) mountAuth(r chi.Router) {}
