package patient

import "testing"

func TestParseNationalID(t *testing.T) {
	const today = "2026-06-01"
	for _, tc := range []struct {
		name      string
		id        string
		ok        bool
		birthDate string
		sex       Sex
	}{
		{"valid, the standard's own example with X check character", "11010519491231002X", true, "1949-12-31", Female},
		{"valid, lower-case x is the same number", "11010519491231002x", true, "1949-12-31", Female},
		{"valid, surrounding spaces are trimmed", " 510824199003071230 ", true, "1990-03-07", Male},
		{"valid, born on 29 February of a leap year", "440304200002290014", true, "2000-02-29", Male},
		{"valid, born on 1 January 1900", "510824190001010011", true, "1900-01-01", Male},
		{"wrong check digit", "510824199003071231", false, "", ""},
		{"X where a digit is due", "51082419900307123X", false, "", ""},
		{"digit where X is due", "110105194912310020", false, "", ""},
		{"transposed digits", "510824199000371230", false, "", ""},
		{"impossible date: 30 February", "510824199002301230", false, "", ""},
		{"impossible date: month 13", "510824199013071230", false, "", ""},
		{"birth date in the future", "510824203001010011", false, "", ""},
		{"born before 1900", "510824189912310017", false, "", ""},
		{"17 characters", "51082419900307123", false, "", ""},
		{"19 characters", "5108241990030712300", false, "", ""},
		{"15-digit first-generation number", "510824900307123", false, "", ""},
		{"letters inside", "5108241990O3071230", false, "", ""},
		{"full-width digits", "５１０８２４１９９００３０７１２３０", false, "", ""},
		{"empty", "", false, "", ""},
	} {
		got, err := ParseNationalID(tc.id, today)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %q → err %v, want ok=%v", tc.name, tc.id, err, tc.ok)
			continue
		}
		if tc.ok && (got.BirthDate != tc.birthDate || got.Sex != tc.sex || len(got.Number) != 18 || got.Number[17] == 'x') {
			t.Errorf("%s: got %+v, want birth %s sex %s", tc.name, got, tc.birthDate, tc.sex)
		}
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"110101199003071234": "1101**********1234",
		"11010519491231002x": "1101**********002X",
		"123":                "***",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
