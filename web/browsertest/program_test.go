package browsertest

import (
	"testing"
	"time"
)

// TestProgramReportPage: the program office opens its report page, sees the
// province's figures with their charts, a pairing's compliance checklist and
// the reminders, and the CSV and Excel links answer with the files.
func TestProgramReportPage(t *testing.T) {
	base := startServer(t)
	// One referral up from 临溪, so the referrals chart has a bar to draw.
	referUp(t, apiLogin(t, base, "linxi.doctor"), apiLogin(t, base, "sph.desk"), "患者甲", "I20.0", "不稳定型心绞痛", "urgent")
	b := newBrowser(t)
	office := b.page(t, "program", base)
	office.login("commission.office", "#/office")
	office.run("open the program reports", 20*time.Second,
		eval(`location.hash = "#/program"`),
		wait(`#program .tiles`),
		pollTrue(`document.querySelector('#nav a[href="#/program"]') !== null`),
		pollTrue(`document.querySelectorAll("#program .tile").length === 9`),
		pollTrue(`document.querySelectorAll("#program svg.chart").length === 2`),
		pollTrue(`document.querySelectorAll("#program svg.chart rect.bar-down").length === 1`),
		pollTrue(`[...document.querySelectorAll("#program svg.chart rect.bar-up")].some(r => r.getAttribute("height") > 0)`),
		pollTrue(`document.querySelector("#prog-scope").value.startsWith("province:")`),
		pollTrue(`document.querySelectorAll("#compliance ul.checklist li .badge.light").length > 0`),
		pollTrue(`document.querySelector("#reminders").children.length > 0`))
	office.shot("program report")
	office.run("the exports answer", 15*time.Second,
		eval(`window.__got = {}; for (const f of ["csv", "xlsx", "html"]) fetch(document.querySelector("#prog-" + f).href, {credentials: "same-origin"}).then(r => { window.__got[f] = r.status + " " + r.headers.get("Content-Type"); })`),
		pollTrue(`(window.__got.csv || "").startsWith("200 text/csv")`),
		pollTrue(`(window.__got.xlsx || "").startsWith("200 application/vnd.openxmlformats")`),
		pollTrue(`(window.__got.html || "").startsWith("200 text/html")`))
	office.run("a pairing's report", 15*time.Second,
		eval(`{ const s = document.querySelector("#prog-scope"); s.value = [...s.options].find(o => o.value.startsWith("pairing:")).value; document.querySelector("#prog-period").value = "2026"; document.querySelector("main form.filters button[type=submit]").click(); }`),
		pollTrue(`document.querySelector("#program h2").textContent.includes("2026 (")`),
		pollTrue(`document.querySelector("#prog-csv").href.includes("pairing_id=")`),
		pollTrue(`document.querySelectorAll("#program svg.chart").length === 2`))
	if bad := office.problems(); len(bad) > 0 {
		t.Errorf("console shows problems:\n%v", bad)
	}
}
