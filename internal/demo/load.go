package demo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"duikou/consult"
	"duikou/internal/auth"
	"duikou/internal/consults"
	"duikou/internal/directory"
	"duikou/referral"
)

// Services are what the loader creates records through, so demo data passes
// the same validation and leaves the same audit rows as data entered by hand.
type Services struct {
	Directory *directory.Service
	Auth      *auth.Service
	// Beds, when given, sizes the tertiary departments' green-channel bed
	// pools, so that a green-channel ticket can be accepted out of the box.
	Beds BedPools
	// Clinics, when set, publishes the demo specialists' remote-clinic slots.
	Clinics ClinicSlots
}

// BedPools sizes bed pools; referrals.Beds implements it.
type BedPools interface {
	Pool(ctx context.Context, p auth.Principal, hospitalID, departmentID string) (referral.BedPool, error)
	SetSize(ctx context.Context, p auth.Principal, hospitalID, departmentID string, version int, size *int) (referral.BedPool, bool, error)
}

// ClinicSlots publishes and lists remote-clinic slots; consults.Service
// implements it.
type ClinicSlots interface {
	Publish(ctx context.Context, p auth.Principal, in consult.SlotInput) (consult.ClinicSlot, error)
	Slots(ctx context.Context, p auth.Principal, q consults.SlotQuery) ([]consult.ClinicSlot, error)
}

// Login is one printed demo account.
type Login struct {
	Username, Password, Hospital string
	Roles                        []string
}

// system is the actor of demo loading in the audit log.
var system = auth.Principal{UserID: "system", DisplayName: "demo loader", Roles: []auth.Role{auth.Admin}}

// Load creates what is missing of the demo province and returns its logins.
func Load(ctx context.Context, s Services) ([]Login, error) {
	ids, err := loadHospitals(ctx, s.Directory)
	if err != nil {
		return nil, err
	}
	depts := map[string]map[string]string{} // hospital key → code → department id
	for _, h := range hospitals {
		if depts[h.Key], err = loadDepartments(ctx, s.Directory, ids[h.Key], h.Departments); err != nil {
			return nil, fmt.Errorf("%s departments: %w", h.Name, err)
		}
	}
	if err := loadPairings(ctx, s.Directory, ids); err != nil {
		return nil, err
	}
	if s.Beds != nil {
		if err := loadBedPools(ctx, s.Beds, ids, depts); err != nil {
			return nil, err
		}
	}
	logins, users, err := loadPeople(ctx, s, ids, depts)
	if err != nil {
		return nil, err
	}
	if s.Clinics != nil {
		if err := loadClinicSlots(ctx, s.Clinics, ids, depts, users, time.Now()); err != nil {
			return nil, fmt.Errorf("clinic slots: %w", err)
		}
	}
	return logins, nil
}

func loadHospitals(ctx context.Context, dir *directory.Service) (map[string]string, error) {
	existing, err := dir.Hospitals(ctx, system, directory.HospitalQuery{Province: Province, Limit: 200})
	if err != nil {
		return nil, err
	}
	byCode := map[string]string{}
	for _, h := range existing {
		byCode[h.OrgCode] = h.ID
	}
	ids := map[string]string{}
	for _, h := range hospitals {
		if id, ok := byCode[h.OrgCode]; ok {
			ids[h.Key] = id
			continue
		}
		created, err := dir.CreateHospital(ctx, system, directory.HospitalInput{
			Name: h.Name, OrgCode: h.OrgCode, Tier: h.Tier, Province: Province, County: h.County, Address: h.Address,
		})
		if err != nil {
			return nil, fmt.Errorf("hospital %s: %w", h.Name, err)
		}
		ids[h.Key] = created.ID
	}
	return ids, nil
}

func loadDepartments(ctx context.Context, dir *directory.Service, hospitalID string, want []department) (map[string]string, error) {
	existing, err := dir.Departments(ctx, system, hospitalID, "", 200)
	if err != nil {
		return nil, err
	}
	byCode := map[string]string{}
	for _, d := range existing {
		byCode[d.Code] = d.ID
	}
	for _, d := range want {
		if _, ok := byCode[d.Code]; ok {
			continue
		}
		created, err := dir.CreateDepartment(ctx, system, hospitalID, directory.DepartmentInput{Code: d.Code, Name: d.Name})
		if err != nil {
			return nil, fmt.Errorf("department %s: %w", d.Name, err)
		}
		byCode[d.Code] = created.ID
	}
	return byCode, nil
}

func loadPairings(ctx context.Context, dir *directory.Service, ids map[string]string) error {
	for _, p := range pairings {
		existing, err := dir.Pairings(ctx, system, directory.PairingQuery{HospitalID: ids[p.Recipient], Limit: 200})
		if err != nil {
			return err
		}
		found := false
		for _, e := range existing {
			found = found || (e.SupportingHospitalID == ids[p.Supporting] && e.RecipientHospitalID == ids[p.Recipient])
		}
		if found {
			continue
		}
		if _, err := dir.CreatePairing(ctx, system, directory.PairingInput{
			SupportingHospitalID: ids[p.Supporting], RecipientHospitalID: ids[p.Recipient], StartsOn: p.StartsOn, Status: "active",
		}); err != nil {
			return fmt.Errorf("pairing %s → %s: %w", p.Supporting, p.Recipient, err)
		}
	}
	return nil
}

// loadBedPools gives the tertiary departments that admit referred patients
// their reserved beds. A pool that exists is left as it is: its size may
// have been changed by hand since.
func loadBedPools(ctx context.Context, beds BedPools, ids map[string]string, depts map[string]map[string]string) error {
	for _, h := range hospitals {
		if h.Tier != string(directory.Tertiary) {
			continue
		}
		for _, d := range h.Departments {
			size, ok := reservedBeds[d.Code]
			if !ok {
				continue
			}
			hospitalID, departmentID := ids[h.Key], depts[h.Key][d.Code]
			cur, err := beds.Pool(ctx, system, hospitalID, departmentID)
			if err != nil {
				return fmt.Errorf("%s %s bed pool: %w", h.Name, d.Name, err)
			}
			if cur.Configured() {
				continue
			}
			if _, _, err := beds.SetSize(ctx, system, hospitalID, departmentID, 0, &size); err != nil {
				return fmt.Errorf("%s %s bed pool: %w", h.Name, d.Name, err)
			}
		}
	}
	return nil
}

func loadPeople(ctx context.Context, s Services, ids map[string]string, depts map[string]map[string]string) ([]Login, map[string]string, error) {
	names := map[string]string{}
	for _, h := range hospitals {
		names[h.Key] = h.Name
	}
	var logins []Login
	users := map[string]string{} // username → user id
	for _, p := range people {
		hospitalID := ids[p.Hospital]
		staffID := ""
		if p.Title != "" {
			var err error
			if staffID, err = ensureStaff(ctx, s.Directory, hospitalID, depts[p.Hospital][p.Department], p); err != nil {
				return nil, nil, fmt.Errorf("staff %s: %w", p.Name, err)
			}
		}
		if p.Username == "" {
			continue
		}
		roles := make([]auth.Role, len(p.Roles))
		for i, r := range p.Roles {
			roles[i] = auth.Role(r)
		}
		id, err := ensureUser(ctx, s.Auth, hospitalID, staffID, p, roles)
		if err != nil {
			return nil, nil, fmt.Errorf("user %s: %w", p.Username, err)
		}
		users[p.Username] = id
		logins = append(logins, Login{Username: p.Username, Password: Password, Hospital: names[p.Hospital], Roles: p.Roles})
	}
	return logins, users, nil
}

func ensureStaff(ctx context.Context, dir *directory.Service, hospitalID, departmentID string, p person) (string, error) {
	after := ""
	for {
		page, err := dir.Staff(ctx, system, directory.StaffQuery{HospitalID: hospitalID, After: after, Limit: 200})
		if err != nil {
			return "", err
		}
		for _, st := range page {
			if st.Name == p.Name {
				return st.ID, nil
			}
		}
		if len(page) < 200 {
			break
		}
		after = page[len(page)-1].ID
	}
	st, err := dir.CreateStaff(ctx, system, directory.StaffInput{
		HospitalID: hospitalID, DepartmentID: departmentID, Name: p.Name, Title: p.Title, Phone: p.Phone,
	})
	return st.ID, err
}

func ensureUser(ctx context.Context, svc *auth.Service, hospitalID, staffID string, p person, roles []auth.Role) (string, error) {
	after := ""
	for {
		page, err := svc.ListUsers(ctx, system, auth.UserFilter{HospitalID: hospitalID, After: after, Limit: 200})
		if err != nil {
			return "", err
		}
		for _, u := range page {
			if u.Username == p.Username {
				return u.ID, nil
			}
		}
		if len(page) < 200 {
			break
		}
		after = page[len(page)-1].ID
	}
	u, err := svc.CreateUser(ctx, system, auth.NewUser{
		Username: p.Username, DisplayName: p.Name, HospitalID: hospitalID, StaffID: staffID,
		Roles: roles, Supervisor: p.Supervisor, Password: Password,
	})
	return u.ID, err
}

// loadClinicSlots publishes the remote clinic of the provincial hospital's
// cardiologist for the week after next (Tuesday and Thursday mornings, four
// half-hour places), so paired county hospitals see next week's schedule
// being posted, as they would a week ahead. A slot already published at the
// same time is left alone, so loading again in the same week adds nothing.
func loadClinicSlots(ctx context.Context, clinics ClinicSlots, ids map[string]string, depts map[string]map[string]string,
	users map[string]string, now time.Time) error {
	const hospital, department, username = "sph", "03.04", "sph.cardio"
	p := auth.Principal{UserID: users[username], HospitalID: ids[hospital], Roles: []auth.Role{auth.Specialist}}
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		loc = time.FixedZone("CST", 8*3600)
	}
	t := now.In(loc)
	monday := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -((int(t.Weekday())+6)%7)+14)
	existing, err := clinics.Slots(ctx, p, consults.SlotQuery{From: monday, To: monday.AddDate(0, 0, 7), SpecialistID: p.UserID, Limit: 200})
	if err != nil {
		return err
	}
	for _, day := range []int{1, 3} { // Tuesday, Thursday
		for _, half := range []int{0, 1, 2, 3} {
			start := monday.AddDate(0, 0, day).Add(9*time.Hour + time.Duration(half)*30*time.Minute)
			if slices.ContainsFunc(existing, func(s consult.ClinicSlot) bool { return s.Start.Equal(start) }) {
				continue
			}
			if _, err := clinics.Publish(ctx, p, consult.SlotInput{DepartmentID: depts[hospital][department],
				Start: start.UTC(), End: start.Add(30 * time.Minute).UTC(), Capacity: 1}); err != nil {
				return err
			}
		}
	}
	return nil
}
