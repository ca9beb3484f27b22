package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"duikou/internal/apperr"
)

// errBodyTooLarge is answered 413.
var errBodyTooLarge = errors.New("request body too large")

// decodeJSON reads exactly one JSON value into dst. Unknown fields, wrong
// types, malformed JSON, trailing data and bodies over the limit are refused
// with an error that names the field at fault.
func decodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apperr.Field("Content-Type", "must be application/json")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if isTooLarge(err) {
			return errBodyTooLarge
		}
		return apperr.Field("body", "must contain a single JSON value")
	}
	return nil
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case isTooLarge(err):
		return errBodyTooLarge
	case errors.Is(err, io.EOF):
		return apperr.Field("body", "is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Field("body", "is not valid JSON (unexpected end)")
	case errors.As(err, &syn):
		return apperr.Field("body", fmt.Sprintf("is not valid JSON at byte %d", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return apperr.Field(field, fmt.Sprintf("must be %s, not %s", jsonTypeName(typ.Type.Kind().String()), typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Field(name, "is not a known field")
	}
	var inv apperr.Invalid
	if errors.As(err, &inv) {
		return inv // from a type's UnmarshalJSON
	}
	return apperr.Field("body", "could not be read: "+err.Error())
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return kind
}

// readJSON decodes the body into dst and answers the problem itself when that
// fails; the handler returns when ok is false.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request, dst any) (ok bool) {
	err := decodeJSON(r, dst)
	if err == nil {
		return true
	}
	if errors.Is(err, errBodyTooLarge) {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "the request body is larger than the limit for this endpoint")
		return false
	}
	a.writeError(w, r, err)
	return false
}
