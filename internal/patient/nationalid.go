package patient

import (
	"errors"
	"strings"
	"time"
)

// The resident identity card number (居民身份证号, GB 11643-1999): six digits
// of the issuing region, eight of the birth date (YYYYMMDD), three of a
// sequence whose last digit is odd for men and even for women, and one check
// character computed from the first seventeen (ISO 7064 MOD 11-2).

const nationalIDLen = 18

var (
	idWeights   = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	idCheckChar = "10X98765432"
)

// NationalID is a validated identity card number and what it tells.
type NationalID struct {
	Number    string // normalised: 18 characters, check character upper-case
	BirthDate string // YYYY-MM-DD
	Sex       Sex
}

// NormaliseNationalID trims the number and upper-cases the check character,
// the form that is hashed and sealed.
func NormaliseNationalID(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// ParseNationalID validates s against today's date (YYYY-MM-DD): length,
// digits, a real birth date not after today, and the check character. The
// error text is written for the person who typed the number.
func ParseNationalID(s, today string) (NationalID, error) {
	n := NormaliseNationalID(s)
	if len(n) != nationalIDLen {
		return NationalID{}, errors.New("must be 18 characters")
	}
	sum := 0
	for i := range 17 {
		c := n[i]
		if c < '0' || c > '9' {
			return NationalID{}, errors.New("must be 17 digits followed by a digit or X")
		}
		sum += int(c-'0') * idWeights[i]
	}
	last := n[17]
	if (last < '0' || last > '9') && last != 'X' {
		return NationalID{}, errors.New("must be 17 digits followed by a digit or X")
	}
	birth, err := time.Parse("20060102", n[6:14])
	if err != nil || birth.Year() < 1900 {
		return NationalID{}, errors.New("does not carry a valid birth date")
	}
	bd := birth.Format(time.DateOnly)
	if bd > today {
		return NationalID{}, errors.New("carries a birth date in the future")
	}
	if idCheckChar[sum%11] != last {
		return NationalID{}, errors.New("has a wrong check character; check the number for a typing error")
	}
	sex := Female
	if (n[16]-'0')%2 == 1 {
		sex = Male
	}
	return NationalID{Number: n, BirthDate: bd, Sex: sex}, nil
}

// Mask shows the first four and last four characters of an identity number
// (region and check, enough for a person to recognise it) and hides the
// birth date and sequence: 1101**********1234.
func Mask(id string) string {
	id = NormaliseNationalID(id)
	if len(id) != nationalIDLen {
		return strings.Repeat("*", len(id))
	}
	return id[:4] + strings.Repeat("*", 10) + id[14:]
}
