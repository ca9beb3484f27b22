package app

import (
	"context"

	"duikou/internal/httpapi"
)

// wire builds the domain services on the open database and Redis.
func (a *App) wire(ctx context.Context, d *httpapi.Deps) error {
	return nil
}

// DemoLogin is one printed demo account.
type DemoLogin struct {
	Username, Password, Hospital string
	Roles                        []string
}

// DemoLogins lists the demo accounts after a -demo start.
func (a *App) DemoLogins() []DemoLogin { return a.demoLogins }

// VerifyAudit checks the audit log's hash chains.
func (a *App) VerifyAudit(ctx context.Context) (report any, ok bool, err error) {
	return nil, false, nil
}
