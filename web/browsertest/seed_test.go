package browsertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// client calls the API as one demo user with a bearer token, to put tickets
// on record before a page is looked at.
type client struct {
	t     *testing.T
	base  string
	token string
	user  struct {
		ID         string `json:"id"`
		HospitalID string `json:"hospital_id"`
	}
}

func apiLogin(t *testing.T, base, username string) *client {
	t.Helper()
	c := &client{t: t, base: base}
	var res struct {
		Token string `json:"token"`
		User  struct {
			ID         string `json:"id"`
			HospitalID string `json:"hospital_id"`
		} `json:"user"`
	}
	c.call("POST", "/auth/login", map[string]string{"username": username, "password": "duikou-demo-2026"}, 0, &res)
	c.token, c.user.ID, c.user.HospitalID = res.Token, res.User.ID, res.User.HospitalID
	return c
}

func (c *client) call(method, path string, body any, ifMatch int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ifMatch > 0 {
		req.Header.Set("If-Match", `"`+strconv.Itoa(ifMatch)+`"`)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

type ticket struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Number  string `json:"number"`
}

// firstDept returns the id of a hospital's department named name.
func (c *client) dept(hospitalID, name string) string {
	var page struct {
		Items []struct{ ID, Name string } `json:"items"`
	}
	c.call("GET", "/hospitals/"+hospitalID+"/departments?limit=200", nil, 0, &page)
	for _, d := range page.Items {
		if d.Name == name {
			return d.ID
		}
	}
	c.t.Fatalf("no department %s at %s", name, hospitalID)
	return ""
}

// referUp writes and submits an up-referral from doctor to desk's hospital.
func referUp(t *testing.T, doctor, desk *client, patientName, code, text, priority string) ticket {
	t.Helper()
	return refer(t, doctor, desk, patientName, code, text, priority, "")
}

// refer is referUp on the green channel when category is given.
func refer(t *testing.T, doctor, desk *client, patientName, code, text, priority, category string) ticket {
	t.Helper()
	var pt struct{ ID string }
	doctor.call("POST", "/patients", map[string]string{"name": patientName, "sex": "female", "birth_date": "1970-05-01", "home_hospital_id": doctor.user.HospitalID}, 0, &pt)
	var consent struct{ ID string }
	doctor.call("POST", "/patients/"+pt.ID+"/consents", map[string]string{"consenter_kind": "patient", "consenter_name": patientName, "purpose": "referral"}, 0, &consent)
	now := time.Now().UTC()
	var draft ticket
	doctor.call("POST", "/referrals", map[string]any{
		"direction": "up", "priority": priority, "transfer_risk": 3, "patient_id": pt.ID,
		"referring_department_id": doctor.dept(doctor.user.HospitalID, "内科"), "referring_doctor_id": doctor.user.ID,
		"receiving_hospital_id": desk.user.HospitalID, "receiving_department_id": desk.dept(desk.user.HospitalID, "心血管内科"),
		"diagnoses": []map[string]string{{"code": code, "text": text}}, "reason": "需上级医院进一步诊治", "clinical_summary": "病情见附",
		"transport": map[string]string{"mode": "hospital_vehicle", "escort": "nurse"}, "consent_id": consent.ID,
		"requested_window": map[string]string{"from": now.Format(time.RFC3339), "to": now.Add(72 * time.Hour).Format(time.RFC3339)},
		"green_channel":    category != "", "green_category": category,
	}, 0, &draft)
	var sent ticket
	doctor.call("POST", fmt.Sprintf("/referrals/%s/actions/submit", draft.ID), map[string]any{}, draft.Version, &sent)
	return sent
}

// decide claims a ticket at the desk and accepts it.
func decide(desk *client, tk ticket) {
	var claimed, accepted ticket
	desk.call("POST", fmt.Sprintf("/referrals/%s/actions/claim", tk.ID), map[string]any{}, tk.Version, &claimed)
	desk.call("POST", fmt.Sprintf("/referrals/%s/actions/accept", tk.ID), map[string]any{"reason": "同意接收"}, claimed.Version, &accepted)
}
