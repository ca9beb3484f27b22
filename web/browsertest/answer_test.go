package browsertest

import (
	"fmt"
	"testing"
	"time"
)

// TestDoctorAnswersTheDesksQuestion: the desk asks for more information; the
// county doctor sees the question on the ticket, rewrites it in the form
// (which opens filled in), and sends it back with an answer.
func TestDoctorAnswersTheDesksQuestion(t *testing.T) {
	base := startServer(t)
	doctorAPI := apiLogin(t, base, "linxi.doctor")
	deskAPI := apiLogin(t, base, "sph.desk")
	tk := referUp(t, doctorAPI, deskAPI, "陈静", "I20.0", "不稳定型心绞痛", "urgent")
	var claimed ticket
	deskAPI.call("POST", fmt.Sprintf("/referrals/%s/actions/claim", tk.ID), map[string]any{}, tk.Version, &claimed)
	deskAPI.call("POST", fmt.Sprintf("/referrals/%s/actions/request_info", tk.ID), map[string]any{"question": "请补充肌钙蛋白结果"}, claimed.Version, nil)

	b := newBrowser(t)
	doctor := b.page(t, "doctor", base)
	doctor.login("linxi.doctor", "#/doctor")
	doctor.run("the ticket shows the question", 15*time.Second,
		eval(fmt.Sprintf(`location.hash = "#/referrals/%s"`, tk.ID)),
		wait(`.badge.status-info_requested`),
		pollTrue(`document.querySelector("dl.facts").textContent.includes("请补充肌钙蛋白结果")`))
	doctor.run("the form opens filled in", 15*time.Second,
		clickLive(`#edit-ticket`),
		wait(`#patient-chosen p`),
		pollTrue(`document.querySelector("#reason").value === "需上级医院进一步诊治"`),
		pollTrue(`document.querySelectorAll("#diagnoses li.dx").length === 1`),
		pollTrue(`document.querySelector("#receiving-department").value !== ""`))
	doctor.shot("editing after the question")
	doctor.run("save the rewrite", 15*time.Second,
		keys(`#summary`, "；肌钙蛋白I 0.8 ng/mL（升高）"),
		click(`#submit-referral`),
		pollTrue(fmt.Sprintf(`location.hash === "#/referrals/%s"`, tk.ID)),
		pollTrue(`document.querySelector(".ticket").textContent.includes("肌钙蛋白I 0.8")`))
	doctor.run("answer and resubmit", 15*time.Second,
		clickLive(`button[data-action="resubmit"]`),
		wait(`dialog.modal textarea`),
		keys(`dialog.modal textarea`, "已补充肌钙蛋白结果"),
		click(`dialog.modal button[type=submit]`),
		wait(`.badge.status-submitted`))
	doctor.shot("resubmitted")
	if bad := doctor.problems(); len(bad) > 0 {
		t.Errorf("console shows problems:\n%v", bad)
	}
}
