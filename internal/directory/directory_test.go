package directory

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"duikou/internal/apperr"
)

func fields(err error) []string {
	var inv apperr.Invalid
	if !errors.As(err, &inv) {
		return nil
	}
	var out []string
	for _, f := range inv {
		out = append(out, f.Field)
	}
	return out
}

func TestSupportingHospitalMustBeOfHigherTier(t *testing.T) {
	for _, tc := range []struct {
		supporting, recipient Tier
		ok                    bool
	}{
		{Tertiary, Secondary, true},
		{Tertiary, Township, true},
		{Secondary, Township, true},
		{Tertiary, Tertiary, false},
		{Secondary, Secondary, false},
		{Secondary, Tertiary, false},
		{Township, Secondary, false},
		{Township, Township, false},
		{Authority, Secondary, false},
		{Tertiary, Authority, false},
	} {
		if got := tc.supporting.CanSupport(tc.recipient); got != tc.ok {
			t.Errorf("%s supports %s: got %v, want %v", tc.supporting, tc.recipient, got, tc.ok)
		}
	}
}

func TestHospitalInputValidation(t *testing.T) {
	good := HospitalInput{Name: " 苍溪县人民医院 ", OrgCode: "12510824452000000X", Tier: "secondary", Province: "四川省", County: "苍溪县"}
	h, err := good.validate()
	if err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
	if h.Name != "苍溪县人民医院" || h.TimeZone != DefaultTimeZone {
		t.Errorf("cleaned: got name %q zone %q", h.Name, h.TimeZone)
	}
	lower := good
	lower.OrgCode = "12510824452000000x"
	if h, err := lower.validate(); err != nil || h.OrgCode != "12510824452000000X" {
		t.Errorf("lower-case org code is normalised: got %q, %v", h.OrgCode, err)
	}

	for _, tc := range []struct {
		name  string
		edit  func(*HospitalInput)
		field string
	}{
		{"missing name", func(in *HospitalInput) { in.Name = "  " }, "name"},
		{"long name", func(in *HospitalInput) { in.Name = strings.Repeat("医", apperr.MaxName+1) }, "name"},
		{"control character", func(in *HospitalInput) { in.Name = "a\x00b" }, "name"},
		{"org code too short", func(in *HospitalInput) { in.OrgCode = "1251082445200000X" }, "org_code"},
		{"org code too long", func(in *HospitalInput) { in.OrgCode = "12510824452000000X1" }, "org_code"},
		{"org code with I", func(in *HospitalInput) { in.OrgCode = "1251082445200000IX" }, "org_code"},
		{"org code with O", func(in *HospitalInput) { in.OrgCode = "1251082445200000OX" }, "org_code"},
		{"org code missing", func(in *HospitalInput) { in.OrgCode = "" }, "org_code"},
		{"unknown tier", func(in *HospitalInput) { in.Tier = "quaternary" }, "tier"},
		{"missing province", func(in *HospitalInput) { in.Province = "" }, "province"},
		{"unknown zone", func(in *HospitalInput) { in.TimeZone = "Mars/Olympus" }, "time_zone"},
	} {
		in := good
		tc.edit(&in)
		_, err := in.validate()
		if got := fields(err); !slices.Equal(got, []string{tc.field}) {
			t.Errorf("%s: got fields %v (%v), want [%s]", tc.name, got, err, tc.field)
		}
	}

	_, err = HospitalInput{}.validate()
	if got := fields(err); !slices.Equal(got, []string{"name", "org_code", "tier", "province"}) {
		t.Errorf("empty input names every missing field at once: got %v", got)
	}
}

func TestDepartmentCodeAndStaffTitle(t *testing.T) {
	for code, ok := range map[string]bool{"03": true, "03.04": true, "3": false, "03.4": false, "03-04": false, "ab": false, "": false} {
		_, err := DepartmentInput{Code: code, Name: "内科"}.validate()
		if (err == nil) != ok {
			t.Errorf("department code %q: got %v, want ok=%v", code, err, ok)
		}
	}
	in := StaffInput{HospitalID: "01900000-0000-7000-8000-000000000001", Name: "张三", Title: "associate_chief_physician"}
	s, err := in.validate()
	if err != nil || s.TitleLabel != "副主任医师" || !s.Active {
		t.Errorf("staff: got %+v, %v", s, err)
	}
	in.Title, in.Phone, in.DepartmentID = "professor", "call me", "dept-1"
	_, err = in.validate()
	if got := fields(err); !slices.Equal(got, []string{"title", "phone", "department_id"}) {
		t.Errorf("bad staff fields: got %v", got)
	}
}

func TestPairingPeriod(t *testing.T) {
	end := func(s string) *string { return &s }
	base := Pairing{StartsOn: "2024-01-01", EndsOn: end("2024-12-31")}
	for _, tc := range []struct {
		name  string
		other Pairing
		want  bool
	}{
		{"same period", Pairing{StartsOn: "2024-01-01", EndsOn: end("2024-12-31")}, true},
		{"starts on the last day", Pairing{StartsOn: "2024-12-31"}, true},
		{"starts the day after", Pairing{StartsOn: "2025-01-01"}, false},
		{"ends the day before", Pairing{StartsOn: "2023-01-01", EndsOn: end("2023-12-31")}, false},
		{"open-ended from before", Pairing{StartsOn: "2020-01-01"}, true},
	} {
		if got := base.overlaps(tc.other); got != tc.want {
			t.Errorf("%s: overlaps = %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.other.overlaps(base); got != tc.want {
			t.Errorf("%s (reversed): overlaps = %v, want %v", tc.name, got, tc.want)
		}
	}

	_, err := PairingInput{SupportingHospitalID: "01900000-0000-7000-8000-000000000001", RecipientHospitalID: "01900000-0000-7000-8000-000000000002",
		StartsOn: "2025-02-30"}.validate()
	if got := fields(err); !slices.Equal(got, []string{"starts_on"}) {
		t.Errorf("impossible date: got %v", got)
	}
	_, err = PairingInput{SupportingHospitalID: "01900000-0000-7000-8000-000000000001", RecipientHospitalID: "01900000-0000-7000-8000-000000000001",
		StartsOn: "2025-01-01", EndsOn: "2024-01-01", Status: "paused"}.validate()
	if got := fields(err); !slices.Equal(got, []string{"status", "recipient_hospital_id", "ends_on"}) {
		t.Errorf("self pairing, reversed period, unknown status: got %v", got)
	}
}
