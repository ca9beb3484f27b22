package app

import (
	"context"
	"fmt"

	"duikou/internal/auth"
	"duikou/internal/directory"
)

// InitAdmin prepares a fresh installation: it creates the organisation the
// first administrator belongs to (found by its code if it exists) and the
// administrator, unless an administrator exists already. It reports whether
// it created the account.
func (a *App) InitAdmin(ctx context.Context, org directory.HospitalInput, username, displayName, password string) (bool, error) {
	system := auth.Principal{UserID: "system", DisplayName: "installation", Roles: []auth.Role{auth.Admin}}
	hospitalID := ""
	after := ""
	for hospitalID == "" {
		page, err := a.svc.directory.Hospitals(ctx, system, directory.HospitalQuery{After: after, Limit: 200})
		if err != nil {
			return false, err
		}
		for _, h := range page {
			if h.OrgCode == org.OrgCode {
				hospitalID = h.ID
			}
		}
		if len(page) < 200 {
			break
		}
		after = page[len(page)-1].ID
	}
	if hospitalID == "" {
		h, err := a.svc.directory.CreateHospital(ctx, system, org)
		if err != nil {
			return false, fmt.Errorf("organisation: %w", err)
		}
		hospitalID = h.ID
	}
	return a.svc.auth.BootstrapAdmin(ctx, auth.NewUser{
		Username: username, DisplayName: displayName, HospitalID: hospitalID,
		Roles: []auth.Role{auth.Admin}, Password: password,
	})
}
