package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
	"duikou/referral"
)

// BedPoolService is what the API needs of the green-channel bed pools.
type BedPoolService interface {
	Pool(ctx context.Context, p auth.Principal, hospitalID, departmentID string) (referral.BedPool, error)
	// SetSize with version 0 creates the pool (stale when one exists).
	SetSize(ctx context.Context, p auth.Principal, hospitalID, departmentID string, version int, size *int) (referral.BedPool, bool, error)
}

// BedPoolRequest sets a pool's size.
type BedPoolRequest struct {
	// Size is the number of beds reserved for referred patients, 0–1000; it
	// may not go below the beds in use.
	Size *int `json:"size"`
}

// Roles the bed pool gates admit; the service narrows each to the hospitals
// it may see or size (see referrals.Beds).
var (
	bedPoolReaders = append([]auth.Role{auth.Admin, auth.ProgramOffice}, auth.ClinicalRoles...)
	bedPoolSizers  = []auth.Role{auth.ReferralDesk, auth.Admin, auth.ProgramOffice}
)

const bedPoolPath = "/hospitals/{hospitalID}/departments/{departmentID}/bed-pool"

// mountBedPools: a department's green-channel bed pool. Its hospital's
// staff see it whole, partners' desks and program staff its counts; its
// referral desk supervisors, administrators and the program office set its
// size. Beds themselves are taken and given back by referral actions.
func (a *API) mountBedPools(r chi.Router) {
	r.With(a.allow(bedPoolReaders...)).Get(bedPoolPath, a.bedPoolGet)
	r.With(a.allow(bedPoolSizers...)).Put(bedPoolPath, a.bedPoolPut)
}

func bedPoolVersion(p referral.BedPool) int { return p.Version }

func (a *API) bedPoolGet(w http.ResponseWriter, r *http.Request) {
	p, err := a.BedPools.Pool(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "hospitalID"), chi.URLParam(r, "departmentID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if !p.Configured() {
		// No pool yet: nothing to match; create one with If-None-Match: *.
		writeJSON(w, http.StatusOK, p)
		return
	}
	regServeOne(a, w, r, http.StatusOK, p, bedPoolVersion, nil)
}

// bedPoolPut sets the size under If-Match, or creates the pool with
// If-None-Match: * (201). The precondition is checked before the body, as
// for every change.
func (a *API) bedPoolPut(w http.ResponseWriter, r *http.Request) {
	version := 0
	if strings.TrimSpace(r.Header.Get("If-Match")) != "" || strings.TrimSpace(r.Header.Get("If-None-Match")) != "*" {
		var err error
		if version, err = ifMatch(r); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	var in BedPoolRequest
	if !a.readJSON(w, r, &in) {
		return
	}
	p, created, err := a.BedPools.SetSize(r.Context(), auth.FromContext(r.Context()),
		chi.URLParam(r, "hospitalID"), chi.URLParam(r, "departmentID"), version, in.Size)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	regServeOne(a, w, r, status, p, bedPoolVersion, err)
}
