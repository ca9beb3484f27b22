package httpapi

import "github.com/go-chi/chi/v5"

// DirectoryService is what the API needs of the directory.
type DirectoryService interface{}

func (a *API) mountDirectory(r chi.Router) {}
