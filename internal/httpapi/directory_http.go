package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
	"duikou/internal/directory"
)

// DirectoryService is what the API needs of the directory.
type DirectoryService interface {
	CreateHospital(ctx context.Context, p auth.Principal, in directory.HospitalInput) (directory.Hospital, error)
	Hospital(ctx context.Context, p auth.Principal, id string) (directory.Hospital, error)
	Hospitals(ctx context.Context, p auth.Principal, q directory.HospitalQuery) ([]directory.Hospital, error)
	UpdateHospital(ctx context.Context, p auth.Principal, id string, version int, patch directory.HospitalPatch) (directory.Hospital, error)

	CreateDepartment(ctx context.Context, p auth.Principal, hospitalID string, in directory.DepartmentInput) (directory.Department, error)
	Department(ctx context.Context, p auth.Principal, id string) (directory.Department, error)
	Departments(ctx context.Context, p auth.Principal, hospitalID, after string, limit int) ([]directory.Department, error)
	UpdateDepartment(ctx context.Context, p auth.Principal, id string, version int, patch directory.DepartmentPatch) (directory.Department, error)

	CreateStaff(ctx context.Context, p auth.Principal, in directory.StaffInput) (directory.Staff, error)
	StaffMember(ctx context.Context, p auth.Principal, id string) (directory.Staff, error)
	Staff(ctx context.Context, p auth.Principal, q directory.StaffQuery) ([]directory.Staff, error)
	UpdateStaff(ctx context.Context, p auth.Principal, id string, version int, patch directory.StaffPatch) (directory.Staff, error)

	CreatePairing(ctx context.Context, p auth.Principal, in directory.PairingInput) (directory.Pairing, error)
	Pairing(ctx context.Context, p auth.Principal, id string) (directory.Pairing, error)
	Pairings(ctx context.Context, p auth.Principal, q directory.PairingQuery) ([]directory.Pairing, error)
	UpdatePairing(ctx context.Context, p auth.Principal, id string, version int, patch directory.PairingPatch) (directory.Pairing, error)
}

// mountDirectory: every authenticated user reads the directory (scoped by the
// service to the hospitals they can reach, unless they run or inspect the
// program); administrators change hospitals, departments and staff; the
// program office and administrators manage pairings.
func (a *API) mountDirectory(r chi.Router) {
	admin := a.allow(auth.Admin)
	pairingEditors := a.allow(auth.Admin, auth.ProgramOffice)

	r.Get("/hospitals", a.dirListHospitals)
	r.With(admin).Post("/hospitals", a.dirCreateHospital)
	r.Get("/hospitals/{hospitalID}", a.dirGetHospital)
	r.With(admin).Patch("/hospitals/{hospitalID}", a.dirUpdateHospital)

	r.Get("/hospitals/{hospitalID}/departments", a.dirListDepartments)
	r.With(admin).Post("/hospitals/{hospitalID}/departments", a.dirCreateDepartment)
	r.Get("/departments/{departmentID}", a.dirGetDepartment)
	r.With(admin).Patch("/departments/{departmentID}", a.dirUpdateDepartment)

	r.Get("/staff", a.dirListStaff)
	r.With(admin).Post("/staff", a.dirCreateStaff)
	r.Get("/staff/{staffID}", a.dirGetStaff)
	r.With(admin).Patch("/staff/{staffID}", a.dirUpdateStaff)

	r.Get("/pairings", a.dirListPairings)
	r.With(pairingEditors).Post("/pairings", a.dirCreatePairing)
	r.Get("/pairings/{pairingID}", a.dirGetPairing)
	r.With(pairingEditors).Patch("/pairings/{pairingID}", a.dirUpdatePairing)
}

// Shared shapes of the register's handlers (directory and patients): read
// one, create, update at a version, list a page.

// regServeOne answers a single resource with its version as ETag.
func regServeOne[T any](a *API, w http.ResponseWriter, r *http.Request, status int, v T, version func(T) int, err error) {
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, version(v))
	writeJSON(w, status, v)
}

// regServeCreate decodes the body and answers 201 with the new resource.
func regServeCreate[In, T any](a *API, w http.ResponseWriter, r *http.Request, create func(context.Context, auth.Principal, In) (T, error), version func(T) int) {
	var in In
	if !a.readJSON(w, r, &in) {
		return
	}
	v, err := create(r.Context(), auth.FromContext(r.Context()), in)
	regServeOne(a, w, r, http.StatusCreated, v, version, err)
}

// regServeUpdate demands If-Match, decodes the patch and applies it at that version.
func regServeUpdate[P, T any](a *API, w http.ResponseWriter, r *http.Request, id string,
	update func(context.Context, auth.Principal, string, int, P) (T, error), version func(T) int) {
	ver, err := ifMatch(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var patch P
	if !a.readJSON(w, r, &patch) {
		return
	}
	v, err := update(r.Context(), auth.FromContext(r.Context()), id, ver, patch)
	regServeOne(a, w, r, http.StatusOK, v, version, err)
}

// regServePage lists one page: the service is asked for one row more than the
// page to learn whether another follows.
func regServePage[T any](a *API, w http.ResponseWriter, r *http.Request, list func(Page) ([]T, error), key func(T) string) {
	servePage(a, w, r, 1, list, key)
}

// regServeLookAheadPage is regServePage for services that fetch the
// look-ahead row themselves, because they audit only the rows a page shows:
// list gets the page size and returns up to one row more.
func regServeLookAheadPage[T any](a *API, w http.ResponseWriter, r *http.Request, list func(Page) ([]T, error), key func(T) string) {
	servePage(a, w, r, 0, list, key)
}

// servePage asks list for the page size plus extra rows; one row beyond the
// page only tells that another page exists.
func servePage[T any](a *API, w http.ResponseWriter, r *http.Request, extra int, list func(Page) ([]T, error), key func(T) string) {
	page, err := pageFrom(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items, err := list(Page{Cursor: page.Cursor, Limit: page.Limit + extra})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(items, page.Limit, key))
}

func hospitalVersion(h directory.Hospital) int     { return h.Version }
func departmentVersion(d directory.Department) int { return d.Version }
func staffVersion(s directory.Staff) int           { return s.Version }
func pairingVersion(p directory.Pairing) int       { return p.Version }

// ---- Hospitals ----

func (a *API) dirListHospitals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	regServePage(a, w, r, func(pg Page) ([]directory.Hospital, error) {
		return a.Directory.Hospitals(r.Context(), auth.FromContext(r.Context()), directory.HospitalQuery{
			Tier: q.Get("tier"), Province: q.Get("province"), County: q.Get("county"), After: pg.Cursor, Limit: pg.Limit})
	}, func(h directory.Hospital) string { return h.ID })
}

func (a *API) dirCreateHospital(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Directory.CreateHospital, hospitalVersion)
}

func (a *API) dirGetHospital(w http.ResponseWriter, r *http.Request) {
	h, err := a.Directory.Hospital(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "hospitalID"))
	regServeOne(a, w, r, http.StatusOK, h, hospitalVersion, err)
}

func (a *API) dirUpdateHospital(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "hospitalID"), a.Directory.UpdateHospital, hospitalVersion)
}

// ---- Departments ----

func (a *API) dirListDepartments(w http.ResponseWriter, r *http.Request) {
	regServePage(a, w, r, func(pg Page) ([]directory.Department, error) {
		return a.Directory.Departments(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "hospitalID"), pg.Cursor, pg.Limit)
	}, func(d directory.Department) string { return d.ID })
}

func (a *API) dirCreateDepartment(w http.ResponseWriter, r *http.Request) {
	hospitalID := chi.URLParam(r, "hospitalID")
	regServeCreate(a, w, r, func(ctx context.Context, p auth.Principal, in directory.DepartmentInput) (directory.Department, error) {
		return a.Directory.CreateDepartment(ctx, p, hospitalID, in)
	}, departmentVersion)
}

func (a *API) dirGetDepartment(w http.ResponseWriter, r *http.Request) {
	d, err := a.Directory.Department(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "departmentID"))
	regServeOne(a, w, r, http.StatusOK, d, departmentVersion, err)
}

func (a *API) dirUpdateDepartment(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "departmentID"), a.Directory.UpdateDepartment, departmentVersion)
}

// ---- Staff ----

func (a *API) dirListStaff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	regServePage(a, w, r, func(pg Page) ([]directory.Staff, error) {
		return a.Directory.Staff(r.Context(), auth.FromContext(r.Context()), directory.StaffQuery{
			HospitalID: q.Get("hospital_id"), DepartmentID: q.Get("department_id"), Title: q.Get("title"),
			After: pg.Cursor, Limit: pg.Limit})
	}, func(s directory.Staff) string { return s.ID })
}

func (a *API) dirCreateStaff(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Directory.CreateStaff, staffVersion)
}

func (a *API) dirGetStaff(w http.ResponseWriter, r *http.Request) {
	s, err := a.Directory.StaffMember(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "staffID"))
	regServeOne(a, w, r, http.StatusOK, s, staffVersion, err)
}

func (a *API) dirUpdateStaff(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "staffID"), a.Directory.UpdateStaff, staffVersion)
}

// ---- Pairings ----

func (a *API) dirListPairings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	regServePage(a, w, r, func(pg Page) ([]directory.Pairing, error) {
		return a.Directory.Pairings(r.Context(), auth.FromContext(r.Context()), directory.PairingQuery{
			HospitalID: q.Get("hospital_id"), Status: q.Get("status"), After: pg.Cursor, Limit: pg.Limit})
	}, func(p directory.Pairing) string { return p.ID })
}

func (a *API) dirCreatePairing(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Directory.CreatePairing, pairingVersion)
}

func (a *API) dirGetPairing(w http.ResponseWriter, r *http.Request) {
	p, err := a.Directory.Pairing(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "pairingID"))
	regServeOne(a, w, r, http.StatusOK, p, pairingVersion, err)
}

func (a *API) dirUpdatePairing(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "pairingID"), a.Directory.UpdatePairing, pairingVersion)
}
