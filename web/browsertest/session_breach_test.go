package browsertest

import (
	"fmt"
	"testing"
	"time"
)

// TestSpecialistSeesAnOverdueRequestAndDeclinesIt: an emergency request
// left unanswered past its response deadline (2 s here) is flagged on the
// specialist's list, first by its countdown and then by the server's
// escalation; its page lists the escalation, and the specialist declines it
// with a reason, which the list shows.
func TestSpecialistSeesAnOverdueRequestAndDeclinesIt(t *testing.T) {
	base := startServer(t, "-session-deadlines", "emergency=2s")
	doctorAPI := apiLogin(t, base, "linxi.doctor")
	specialistAPI := apiLogin(t, base, "sph.cardio")

	b := newBrowser(t)
	specialist := b.page(t, "specialist", base)
	specialist.login("sph.cardio", "#/sessions")
	specialist.run("the list is live", 15*time.Second, wait(`table[data-list="in"]`), wait(`#live-state`))

	var pt struct{ ID string }
	doctorAPI.call("POST", "/patients", map[string]string{"name": "孙桂兰", "sex": "female", "birth_date": "1949-11-20", "home_hospital_id": doctorAPI.user.HospitalID}, 0, &pt)
	var s session
	doctorAPI.call("POST", "/sessions", map[string]any{
		"kind": "consult", "urgency": "emergency", "patient_id": pt.ID,
		"target_hospital_id": specialistAPI.user.HospitalID, "target_department_ids": []string{specialistAPI.dept(specialistAPI.user.HospitalID, "心血管内科")},
		"question": "急性胸痛，心电图可疑ST段抬高，请会诊", "clinical_summary": "女，77岁，胸痛1小时",
	}, 0, &s)
	row := fmt.Sprintf(`table[data-list="in"] tr[data-id="%s"]`, s.ID)
	specialist.run("the request arrives and runs out of time", 20*time.Second,
		wait(row+` .respond-by`),
		wait(row+` .respond-by.over`),
		wait(row+`.is-breach`))
	specialist.shot("overdue")
	specialist.run("its page lists the escalation", 15*time.Second,
		clickLive(row+` a`),
		wait(`.session[data-status="requested"]`),
		wait(`.badge.breach`),
		pollTrue(`[...document.querySelectorAll("h2")].some((x) => x.textContent === "超时升级")`))
	specialist.run("decline with a reason", 15*time.Second,
		clickLive(`button[data-action="decline"]`),
		wait(`#decline-reason`),
		keys(`#decline-reason`, "本科室值班医生正在手术，请转急诊科"),
		click(`dialog.modal button[type=submit]`),
		wait(`.session[data-status="declined"]`),
		pollTrue(`document.querySelector(".session").textContent.includes("本科室值班医生正在手术")`))
	specialist.shot("declined")
	if bad := specialist.problems(); len(bad) > 0 {
		t.Errorf("console shows problems:\n%v", bad)
	}
}
