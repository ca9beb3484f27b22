package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"duikou/internal/auth"
	"duikou/internal/patient"
)

// PatientService is what the API needs of the patient register.
type PatientService interface {
	Create(ctx context.Context, p auth.Principal, in patient.PatientInput) (patient.Patient, error)
	Get(ctx context.Context, p auth.Principal, id string) (patient.Patient, error)
	// List returns up to q.Limit+1 patients; the extra one only tells that
	// another page follows.
	List(ctx context.Context, p auth.Principal, q patient.Query) ([]patient.Patient, error)
	SearchByNationalID(ctx context.Context, p auth.Principal, in patient.SearchInput) ([]patient.Patient, error)
	Update(ctx context.Context, p auth.Principal, id string, version int, patch patient.PatientPatch) (patient.Patient, error)

	RecordConsent(ctx context.Context, p auth.Principal, patientID string, in patient.ConsentInput) (patient.Consent, error)
	Consents(ctx context.Context, p auth.Principal, patientID, after string, limit int) ([]patient.Consent, error)
	WithdrawConsent(ctx context.Context, p auth.Principal, patientID, consentID string, in patient.WithdrawInput) (patient.Consent, error)
}

// mountPatients: patient data is for clinical roles only; the service further
// limits each caller to patients of the hospitals it can reach.
func (a *API) mountPatients(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.allow(auth.ClinicalRoles...))
		r.Post("/patients", a.patCreate)
		r.Get("/patients", a.patList)
		r.Post("/patients/search", a.patSearch)
		r.Get("/patients/{patientID}", a.patGet)
		r.Patch("/patients/{patientID}", a.patUpdate)
		r.Get("/patients/{patientID}/consents", a.patListConsents)
		r.Post("/patients/{patientID}/consents", a.patRecordConsent)
		r.Post("/patients/{patientID}/consents/{consentID}/withdraw", a.patWithdrawConsent)
	})
}

func patientVersion(p patient.Patient) int { return p.Version }

func (a *API) patCreate(w http.ResponseWriter, r *http.Request) {
	regServeCreate(a, w, r, a.Patients.Create, patientVersion)
}

func (a *API) patGet(w http.ResponseWriter, r *http.Request) {
	pt, err := a.Patients.Get(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "patientID"))
	regServeOne(a, w, r, http.StatusOK, pt, patientVersion, err)
}

func (a *API) patUpdate(w http.ResponseWriter, r *http.Request) {
	regServeUpdate(a, w, r, chi.URLParam(r, "patientID"), a.Patients.Update, patientVersion)
}

func (a *API) patList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	regServeLookAheadPage(a, w, r, func(pg Page) ([]patient.Patient, error) {
		return a.Patients.List(r.Context(), auth.FromContext(r.Context()), patient.Query{
			Q: q.Get("q"), HomeHospitalID: q.Get("home_hospital_id"), After: pg.Cursor, Limit: pg.Limit})
	}, func(p patient.Patient) string { return p.ID })
}

// patSearch finds a patient by exact national ID, sent in the body so that
// the number never sits in a URL or an access log.
func (a *API) patSearch(w http.ResponseWriter, r *http.Request) {
	var in patient.SearchInput
	if !a.readJSON(w, r, &in) {
		return
	}
	found, err := a.Patients.SearchByNationalID(r.Context(), auth.FromContext(r.Context()), in)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(found, len(found)+1, func(p patient.Patient) string { return p.ID }))
}

func (a *API) patListConsents(w http.ResponseWriter, r *http.Request) {
	regServePage(a, w, r, func(pg Page) ([]patient.Consent, error) {
		return a.Patients.Consents(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "patientID"), pg.Cursor, pg.Limit)
	}, func(c patient.Consent) string { return c.ID })
}

func (a *API) patRecordConsent(w http.ResponseWriter, r *http.Request) {
	var in patient.ConsentInput
	if !a.readJSON(w, r, &in) {
		return
	}
	c, err := a.Patients.RecordConsent(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "patientID"), in)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (a *API) patWithdrawConsent(w http.ResponseWriter, r *http.Request) {
	var in patient.WithdrawInput
	if !a.readJSON(w, r, &in) {
		return
	}
	c, err := a.Patients.WithdrawConsent(r.Context(), auth.FromContext(r.Context()),
		chi.URLParam(r, "patientID"), chi.URLParam(r, "consentID"), in)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
