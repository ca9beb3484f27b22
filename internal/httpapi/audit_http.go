package httpapi

import "github.com/go-chi/chi/v5"

// AuditLogService is what the API needs of the audit log.
type AuditLogService interface{}

func (a *API) mountAudit(r chi.Router) {}
