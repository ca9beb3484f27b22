package browsertest

import (
	"github.com/chromedp/chromedp"
	"testing"
	"time"
)

// TestProgramOfficeDashboardAndLanguage: the program office's dashboard draws
// its charts from the statistics API for tickets on record, and the whole UI
// switches to English and stays so after a reload.
func TestProgramOfficeDashboardAndLanguage(t *testing.T) {
	base := startServer(t)
	doctor := apiLogin(t, base, "linxi.doctor")
	desk := apiLogin(t, base, "sph.desk")
	for i, d := range []struct{ code, text, priority string }{
		{"I20.0", "不稳定型心绞痛", "urgent"}, {"I20.0", "不稳定型心绞痛", "urgent"}, {"I20.0", "不稳定型心绞痛", "routine"},
		{"I50.0", "充血性心力衰竭", "urgent"}, {"I50.0", "充血性心力衰竭", "routine"}, {"I50.0", "充血性心力衰竭", "routine"},
		{"I48", "心房纤颤和扑动", "routine"},
	} {
		tk := referUp(t, doctor, desk, "患者"+string(rune('甲'+i)), d.code, d.text, d.priority)
		if i%3 != 2 {
			decide(desk, tk)
		}
	}

	b := newBrowser(t)
	office := b.page(t, "office", base)
	office.login("commission.office", "#/office")
	office.run("the charts are drawn", 20*time.Second,
		wait(`#dashboard .tiles`),
		pollTrue(`document.querySelectorAll("#dashboard svg.chart").length === 3`),
		pollTrue(`document.querySelectorAll("#dashboard svg.chart rect.bar-up").length > 0`),
		pollTrue(`[...document.querySelectorAll("#dashboard .county h3")].some(h => h.textContent.includes("临溪"))`),
		pollTrue(`document.querySelector("#dashboard .hbars .code").textContent === "I20.0"`))
	office.shot("dashboard zh-CN")

	office.run("switch to English", 15*time.Second,
		choose(`#lang`, `"en"`),
		pollTrue(`document.documentElement.lang === "en"`),
		pollTrue(`document.querySelector("main h1").textContent === "Referral statistics"`),
		pollTrue(`document.querySelectorAll("#dashboard svg.chart").length === 3`))
	office.shot("dashboard en")
	office.run("English stays after a reload", 15*time.Second,
		chromedp.Reload(),
		pollTrue(`document.readyState === "complete" && !!document.querySelector("main h1")`),
		pollTrue(`document.querySelector("main h1").textContent === "Referral statistics"`),
		pollTrue(`document.querySelector("#logout").textContent === "Sign out"`))

	for _, p := range []*page{office} {
		if bad := p.problems(); len(bad) > 0 {
			t.Errorf("%s's console shows problems:\n%v", p.name, bad)
		}
	}
}

// TestFieldErrorsStandBesideTheirFields: what the API refuses is shown next
// to the field at fault, marked invalid, in the user's language.
func TestFieldErrorsStandBesideTheirFields(t *testing.T) {
	base := startServer(t)
	b := newBrowser(t)
	doctor := b.page(t, "doctor", base)
	doctor.login("linxi.doctor", "#/doctor")
	doctor.run("register a patient with a wrong national ID", 20*time.Second,
		eval(`location.hash = "#/referrals/new"`),
		wait(`#patient-q`),
		click(`fieldset details.register > summary`),
		keys(`input[data-field="name"]`, "钱七"),
		choose(`select[data-field="sex"]`, `"female"`),
		choose(`input[data-field="birth_date"]`, `"1980-01-01"`),
		keys(`input[data-field="national_id"]`, "110101198001010000"),
		click(`details.register .sub-form > button.btn`),
		pollTrue(`document.querySelector('input[data-field="national_id"]').getAttribute("aria-invalid") === "true"`),
		pollTrue(`document.querySelector('input[data-field="national_id"]').closest(".field").querySelector(".field-error").textContent.length > 0`),
		pollTrue(`document.activeElement === document.querySelector('input[data-field="national_id"]')`))
	doctor.shot("national id refused")
	doctor.run("submitting without a patient names the patient", 10*time.Second,
		click(`#submit-referral`),
		pollTrue(`document.querySelector("#patient-chosen").getAttribute("aria-invalid") === "true"`))
	if bad := doctor.problems(); len(bad) > 0 {
		// The refused registration is a 400 the page handled; nothing else may show.
		var other []string
		for _, l := range bad {
			if !contains(l, "/api/v1/patients") {
				other = append(other, l)
			}
		}
		if len(other) > 0 {
			t.Errorf("console shows problems:\n%v", other)
		}
	}
}
