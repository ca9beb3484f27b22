package httpapi

import "github.com/go-chi/chi/v5"

// PatientService is what the API needs of the patient register.
type PatientService interface{}

func (a *API) mountPatients(r chi.Router) {}
