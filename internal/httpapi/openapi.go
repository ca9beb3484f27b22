package httpapi

import "net/http"

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"openapi": "3.1.0"})
}
