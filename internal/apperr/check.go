package apperr

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Text trims s and checks it: valid UTF-8, no control characters, present
// when required, at most max characters. It returns the trimmed value and
// adds any fault to v under field.
func (v *Invalid) Text(field, s string, required bool, max int) string {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		v.Add(field, "is not valid UTF-8 text")
	case strings.ContainsFunc(s, unicode.IsControl):
		v.Add(field, "must not contain control characters")
	case required && s == "":
		v.Add(field, "is required")
	case utf8.RuneCountInString(s) > max:
		v.Add(field, "must be at most "+strconv.Itoa(max)+" characters")
	}
	return s
}

// IsID reports whether s is an id this server issues (a UUID in canonical
// form). Anything else cannot name a row and is never sent to the database.
func IsID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}
