package browsertest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// session is the part of a remote session the test reads back.
type session struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Status  string `json:"status"`
}

// TestSpecialistSignsDoctorAcknowledges is browser test 4. The whole session
// goes through the UI: the county doctor requests a consultation (recording
// the patient's consents, attaching a DICOM series), the specialist accepts it, sets the time, starts
// and ends it, then writes and signs the opinion; the county doctor, whose
// page stayed open on the session, sees the signed opinion arrive without
// reloading and acknowledges it; both pages then show it acknowledged; the
// opinion advised a referral, which opens drafted in the referral form. Only
// the patient's registration is done through the API.
func TestSpecialistSignsDoctorAcknowledges(t *testing.T) {
	base := startServer(t)
	doctorAPI := apiLogin(t, base, "linxi.doctor")
	// Registering the patient is not what this test is about.
	doctorAPI.call("POST", "/patients", map[string]string{"name": "王建国", "sex": "male", "birth_date": "1962-03-14", "home_hospital_id": doctorAPI.user.HospitalID}, 0, nil)

	b := newBrowser(t)
	doctor := b.page(t, "doctor", base)
	specialist := b.page(t, "specialist", base)
	doctor.login("linxi.doctor", "#/doctor")
	specialist.login("sph.cardio", "#/sessions")

	// The county doctor requests the consultation, recording the patient's
	// two consents on the way.
	doctor.run("fill in the request", 20*time.Second,
		eval(`location.hash = "#/sessions/new"`),
		wait(`#session-target`),
		choose(`#session-target`, `[...document.querySelectorAll("#session-target option")].find((o) => o.textContent === "青川省人民医院").value`),
		wait(`#session-departments input`),
		choose(`#session-urgency`, `"urgent"`),
		choose(`#session-own-department`, `[...document.querySelectorAll("#session-own-department option")].find((o) => o.textContent === "内科").value`),
		eval(`[...document.querySelectorAll("#session-departments label")].find((l) => l.textContent.trim() === "心血管内科").querySelector("input").click()`),
		keys(`#patient-q`, "王建国\r"),
		clickLive(`#patient-results button.pick`),
		wait(`#record-remote_consultation`),
		click(`#record-remote_consultation`),
		wait(`.consent-state[data-purpose="remote_consultation"] .status-accepted`),
		wait(`#record-data_sharing`),
		click(`#record-data_sharing`),
		wait(`.consent-state[data-purpose="data_sharing"] .status-accepted`),
		keys(`#session-question`, "胸痛反复发作，请协助判断是否需要上转行冠脉造影"),
		keys(`#session-summary`, "男，64岁，活动后胸痛3天，心电图ST段压低"),
		// A CT series goes with it: the file picker's DICOM path.
		chromedp.SetUploadFiles(chromedp.CSS(`#files`), []string{dicomFile(t)}),
		pollTrue(`document.querySelector("#file-list").textContent.includes("DICOM")`))
	doctor.shot("request filled in")
	doctor.run("send it", 15*time.Second,
		click(`#submit-session`),
		wait(`.session[data-status="requested"]`),
		pollTrue(`document.querySelector(".session").textContent.includes("ct-multiframe.dcm")`))
	id := doctor.eval(`location.hash.split("/")[2]`)
	doctor.shot("requested")

	// The specialist answers it from the incoming list: accept (for
	// themself), set the time, start and end the session.
	row := fmt.Sprintf(`table[data-list="in"] tr[data-id="%s"]`, id)
	specialist.run("the request arrives with its deadline", 15*time.Second,
		wait(row+`[data-status="requested"] .respond-by`))
	specialist.shot("incoming request")
	specialist.run("accept, schedule, start and end", 30*time.Second,
		clickLive(row+` a`),
		wait(`button[data-action="accept"]`),
		click(`button[data-action="accept"]`),
		wait(`dialog.modal button[type=submit]`),
		click(`dialog.modal button[type=submit]`),
		wait(`.session[data-status="accepted"]`),
		clickLive(`button[data-action="schedule"]`),
		wait(`dialog.modal #schedule-start`),
		click(`dialog.modal button[type=submit]`),
		wait(`.session[data-status="scheduled"]`),
		clickLive(`button[data-action="start"]`),
		wait(`.session[data-status="live"]`),
		clickLive(`button[data-action="end"]`),
		wait(`.session[data-status="ended"]`))
	doctor.run("the doctor's page follows", 15*time.Second,
		wait(`.session[data-status="ended"]`),
		pollTrue(`document.querySelector("#opinion").textContent.includes("尚未签署")`))
	doctor.shot("waiting for the opinion")

	specialist.run("write the opinion", 15*time.Second,
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
	specialist.run("the session reads in English too", 15*time.Second,
		choose(`#lang`, `"en"`),
		pollTrue(`document.querySelector(".badge.sstatus-acknowledged")?.textContent === "Acknowledged"`),
		pollTrue(`(document.querySelector(".signed-opinion")?.textContent || "").includes("Referral advised to 心血管内科")`))
	specialist.shot("in English")
	specialist.run("back to Chinese", 15*time.Second, choose(`#lang`, `"zh-CN"`), wait(`.badge.sstatus-acknowledged`))
	specialist.run("a signed addendum", 15*time.Second,
		keys(`#addendum-text`, "复查肌钙蛋白6小时后仍阴性，维持原意见"),
		click(`#add-addendum`),
		wait(`ol.addenda li[data-seq="1"]`),
		pollTrue(`document.querySelector("ol.addenda").textContent.includes("维持原意见")`))
	specialist.shot("addendum")
	specialist.run("and so does the incoming list", 15*time.Second,
		eval(`location.hash = "#/sessions"`),
		wait(row+`[data-status="acknowledged"]`))

	// One click from the opinion to the referral it advises: the form opens
	// on the drafted up-referral, the patient and department filled in.
	doctor.run("draft the referral the opinion advises", 15*time.Second,
		clickLive(`#draft-referral`),
		pollTrue(`location.hash.startsWith("#/referrals/new?edit=")`),
		wait(`#patient-chosen p`),
		pollTrue(`document.querySelector("#patient-chosen").textContent.includes("王建国")`),
		pollTrue(`document.querySelector("#receiving-department").selectedOptions[0].textContent === "心血管内科"`))
	doctor.shot("referral drafted from the opinion")

	var got session
	doctorAPI.call("GET", "/sessions/"+id, nil, 0, &got)
	if got.Status != "acknowledged" {
		t.Errorf("the server has the session %s, want acknowledged", got.Status)
	}
	for _, p := range []*page{doctor, specialist} {
		if bad := p.problems(); len(bad) > 0 {
			t.Errorf("%s's console shows problems:\n%v", p.name, bad)
		}
	}
}

// dicomFile is a multi-frame CT series from the attachment package's test data.
func dicomFile(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../attachment/testdata/ct-multiframe.dcm")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eval reads the value of a JavaScript expression as a string.
func (p *page) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, js, err)
	}
	return s
}
