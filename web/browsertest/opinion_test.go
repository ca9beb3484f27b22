package browsertest

import (
	"fmt"
	"testing"
	"time"
)

// session is the part of a remote session the setup needs.
type session struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Status  string `json:"status"`
}

// endedConsultation puts a consultation on record through the API, up to
// the state the opinion is signed in: the county doctor requests it (with
// the patient's consents), the specialist accepts it for themself,
// schedules, starts and ends it. These steps are not what test 4 is about.
func endedConsultation(t *testing.T, doctor, specialist *client, patientName string) session {
	t.Helper()
	var pt struct{ ID string }
	doctor.call("POST", "/patients", map[string]string{"name": patientName, "sex": "male", "birth_date": "1962-03-14", "home_hospital_id": doctor.user.HospitalID}, 0, &pt)
	doctor.call("POST", "/patients/"+pt.ID+"/consents", map[string]string{"consenter_kind": "patient", "consenter_name": patientName, "purpose": "remote_consultation"}, 0, nil)
	doctor.call("POST", "/patients/"+pt.ID+"/consents", map[string]string{"consenter_kind": "patient", "consenter_name": patientName, "purpose": "data_sharing", "shared_with_hospital_id": specialist.user.HospitalID}, 0, nil)
	cardio := specialist.dept(specialist.user.HospitalID, "心血管内科")
	var s session
	doctor.call("POST", "/sessions", map[string]any{
		"kind": "consult", "urgency": "urgent", "patient_id": pt.ID,
		"requesting_department_id": doctor.dept(doctor.user.HospitalID, "内科"),
		"target_hospital_id":       specialist.user.HospitalID, "target_department_ids": []string{cardio},
		"question": "胸痛反复发作，请协助判断是否需要上转行冠脉造影", "clinical_summary": "男，64岁，活动后胸痛3天，心电图ST段压低",
	}, 0, &s)
	specialist.call("POST", fmt.Sprintf("/sessions/%s/actions/accept", s.ID), map[string]any{"specialists": []map[string]string{{"specialist_id": specialist.user.ID, "department_id": cardio}}}, s.Version, &s)
	start := time.Now().UTC().Truncate(time.Minute)
	specialist.call("POST", fmt.Sprintf("/sessions/%s/actions/schedule", s.ID), map[string]any{"schedule": map[string]string{"start": start.Format(time.RFC3339), "end": start.Add(30 * time.Minute).Format(time.RFC3339)}}, s.Version, &s)
	specialist.call("POST", fmt.Sprintf("/sessions/%s/actions/start", s.ID), map[string]any{}, s.Version, &s)
	specialist.call("POST", fmt.Sprintf("/sessions/%s/actions/end", s.ID), map[string]any{}, s.Version, &s)
	if s.Status != "ended" {
		t.Fatalf("setup: the session is %s, not ended", s.Status)
	}
	return s
}

// TestSpecialistSignsDoctorAcknowledges is browser test 4: the specialist
// writes and signs the opinion of an ended consultation; the county doctor,
// who has the session open, sees the signed opinion arrive without reloading
// and acknowledges it; both pages then show the session acknowledged.
func TestSpecialistSignsDoctorAcknowledges(t *testing.T) {
	base := startServer(t)
	doctorAPI := apiLogin(t, base, "linxi.doctor")
	specialistAPI := apiLogin(t, base, "sph.cardio")
	s := endedConsultation(t, doctorAPI, specialistAPI, "王建国")
	here := fmt.Sprintf(`location.hash = "#/sessions/%s"`, s.ID)

	b := newBrowser(t)
	doctor := b.page(t, "doctor", base)
	specialist := b.page(t, "specialist", base)
	doctor.login("linxi.doctor", "#/doctor")
	specialist.login("sph.cardio", "#/sessions")

	// The specialist finds the session in the incoming list.
	specialist.run("the incoming list shows the ended session", 15*time.Second,
		wait(fmt.Sprintf(`table[data-list="in"] tr[data-id="%s"][data-status="ended"]`, s.ID)))
	specialist.shot("incoming list")
	doctor.run("the doctor opens the session", 15*time.Second,
		eval(here), wait(`.session[data-status="ended"]`),
		pollTrue(`document.querySelector("#opinion").textContent.includes("`+"尚未签署"+`")`))
	doctor.shot("waiting for the opinion")

	specialist.run("write the opinion", 15*time.Second,
		clickLive(fmt.Sprintf(`table[data-list="in"] tr[data-id="%s"] a`, s.ID)),
		wait(`#op-findings`),
		keys(`#op-findings`, "心电图示V4-V6导联ST段压低0.1mV，肌钙蛋白阴性"),
		keys(`#op-impression`, "不稳定型心绞痛可能性大"),
		keys(`#op-recommendations`, "双抗血小板及他汀治疗，建议上转行冠脉造影"),
		click(`#op-referral`),
		wait(`#op-department`),
		choose(`#op-department`, `[...document.querySelectorAll("#op-department option")].find((o) => o.textContent === "心血管内科").value`))
	specialist.shot("opinion written")
	specialist.run("sign it", 15*time.Second,
		click(`#sign-opinion`),
		wait(`dialog.modal button[type=submit]`),
		click(`dialog.modal button[type=submit]`),
		wait(`.session[data-status="opinion_signed"]`),
		wait(`.signed-opinion`),
		pollTrue(`!document.querySelector("#op-findings")`)) // read-only once signed
	specialist.shot("signed")

	doctor.run("the doctor sees the signed opinion without reloading", 15*time.Second,
		wait(`.session[data-status="opinion_signed"]`),
		pollTrue(`document.querySelector(".signed-opinion").textContent.includes("不稳定型心绞痛可能性大")`),
		wait(`#draft-referral`))
	doctor.shot("opinion arrived")
	doctor.run("acknowledge", 15*time.Second,
		clickLive(`button[data-action="acknowledge"]`),
		wait(`.session[data-status="acknowledged"]`),
		wait(`.badge.sstatus-acknowledged`))
	doctor.shot("acknowledged")

	specialist.run("the specialist's page shows it acknowledged", 15*time.Second,
		wait(`.session[data-status="acknowledged"]`))
	specialist.shot("acknowledged")
	specialist.run("and so does the incoming list", 15*time.Second,
		eval(`location.hash = "#/sessions"`),
		wait(fmt.Sprintf(`table[data-list="in"] tr[data-id="%s"][data-status="acknowledged"]`, s.ID)))

	var got session
	doctorAPI.call("GET", "/sessions/"+s.ID, nil, 0, &got)
	if got.Status != "acknowledged" {
		t.Errorf("the server has the session %s, want acknowledged", got.Status)
	}
	for _, p := range []*page{doctor, specialist} {
		if bad := p.problems(); len(bad) > 0 {
			t.Errorf("%s's console shows problems:\n%v", p.name, bad)
		}
	}
}
