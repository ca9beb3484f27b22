package httpapi

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"duikou/internal/apperr"
	"duikou/referral/icd10"
)

// CodeList searches the ICD-10 code list shipped with the product.
type CodeList interface {
	Search(q string, limit int) []icd10.Code
}

// mountICD10 serves the code list to every signed-in user: it is reference
// data, holds nothing about patients, and is not audited.
func (a *API) mountICD10(r chi.Router) {
	r.Get("/icd10", a.icd10Search)
}

func (a *API) icd10Search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > icd10.MaxResults {
			a.writeError(w, r, apperr.Field("limit", "must be a whole number from 1 to "+strconv.Itoa(icd10.MaxResults)))
			return
		}
		limit = n
	}
	// The list changes only with a new release; a browser may keep answers
	// for a while, but only for this user (it sits behind a session).
	w.Header().Set("Cache-Control", "private, max-age=3600")
	writeJSON(w, http.StatusOK, List[icd10.Code]{Items: a.ICD10.Search(q.Get("q"), limit)})
}
