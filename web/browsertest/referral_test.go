package browsertest

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestGreenReferralReachesTheDeskLive is the referral path as two people
// live it: a county doctor writes a green-channel up-referral; the tertiary
// hospital's referral desk, in another browser context, sees it appear on
// top of its board within 2 seconds without reloading, claims it and
// accepts it into a reserved bed; the doctor's open ticket page shows the
// new state by itself.
func TestGreenReferralReachesTheDeskLive(t *testing.T) {
	base := startServer(t)
	b := newBrowser(t)
	doctor := b.page(t, "doctor", base)
	desk := b.page(t, "desk", base)

	desk.login("sph.desk", "#/desk")
	desk.run("the board is live", 15*time.Second,
		wait(`#board`),
		pollTrue(`document.querySelector("#live-state").classList.contains("live")`),
		eval(`window.__sameDocument = true`))
	desk.shot("board before")

	doctor.login("linxi.doctor", "#/doctor")
	doctor.shot("doctor home")
	ecg := writePNG(t, "心电图.png")
	doctor.run("open the referral form", 15*time.Second,
		chromedp.Navigate(base+"/#/referrals/new"),
		wait(`#patient-q`))

	// A new patient, registered from the form, and their consent.
	doctor.run("register the patient and record consent", 15*time.Second,
		click(`fieldset details.register > summary`),
		keys(`input[data-field="name"]`, "赵建国"),
		choose(`select[data-field="sex"]`, `"male"`),
		choose(`input[data-field="birth_date"]`, `"1958-03-14"`),
		click(`details.register .sub-form > button.btn`),
		wait(`#patient-chosen p`),
		wait(`#record-consent`),
		click(`#record-consent`),
		wait(`#consents input[type=radio]:checked`))

	// Where it goes, the green channel, and a diagnosis found by its code.
	doctor.run("fill in the referral", 20*time.Second,
		pollTrue(`document.querySelector("#receiving-hospital").options.length > 1`),
		choose(`#receiving-hospital`, `document.querySelector("#receiving-hospital").value || document.querySelector("#receiving-hospital").options[1].value`),
		pollTrue(`[...document.querySelector("#receiving-department").options].some(o => o.text.includes("心血管内科"))`),
		choose(`#receiving-department`, `[...document.querySelector("#receiving-department").options].find(o => o.text.includes("心血管内科")).value`),
		choose(`#referring-department`, `document.querySelector("#referring-department").value || document.querySelector("#referring-department").options[1].value`),
		click(`#green`),
		wait(`#green-category`),
		choose(`#green-category`, `"chest_pain"`),
		choose(`#priority`, `"emergency"`),
		choose(`#transfer-risk`, `"2"`),
		keys(`#icd-q`, "I21.0"),
		wait(`#icd-list li[data-code="I21.0"]`),
		keys(`#icd-q`, kb.Enter),
		wait(`#diagnoses li.dx`),
		keys(`#reason`, "急性前壁心肌梗死，需急诊PCI"),
		keys(`#summary`, "胸痛2小时，心电图V1–V4导联ST段抬高"),
		choose(`#transport-mode`, `"ambulance"`),
		choose(`#transport-escort`, `"doctor"`),
		chromedp.SetUploadFiles(chromedp.CSS(`#files`), []string{ecg}),
		pollTrue(`document.querySelector("#file-list").textContent.includes("心电图.png")`))
	doctor.shot("referral form filled")

	submitted := time.Now()
	var number string
	doctor.run("submit", 20*time.Second,
		click(`#submit-referral`),
		pollTrue(`/^#\/referrals\/[\w-]+$/.test(location.hash) && location.hash !== "#/referrals/new"`),
		pollTrue(`(document.querySelector("#ticket-number") || {}).textContent?.startsWith("ZZ-")`),
		eval(`window.__sameDocument = true`))
	onTicket := time.Now()
	number = doctor.text(`#ticket-number`)
	doctor.shot("ticket submitted")

	// The desk sees it on top of its board, green, within 2 seconds.
	topIs := fmt.Sprintf(`(() => { const r = document.querySelector("#board li.ticket-row"); return !!r && r.dataset.number === %q && r.classList.contains("green"); })()`, number)
	desk.run("the green ticket appears on top of the board within 2 s", 2*time.Second, pollTrue(topIs))
	t.Logf("ticket %s on the desk's board %v after the doctor's click (%v after the ticket page showed it)",
		number, time.Since(submitted).Round(time.Millisecond), time.Since(onTicket).Round(time.Millisecond))
	desk.run("the green alert shows", 5*time.Second,
		pollTrue(`!document.querySelector("#green-alert").hidden`),
		pollTrue(fmt.Sprintf(`document.querySelector("#green-alert").textContent.includes(%q)`, number)),
		pollTrue(`document.querySelector("#green-alert").dataset.sound === "played"`))
	desk.shot("green ticket arrived")

	// The desk claims it and accepts it into a reserved bed.
	row := fmt.Sprintf(`#board li.ticket-row[data-number=%q]`, number)
	desk.run("claim the ticket", 15*time.Second,
		clickLive(row+` button[data-claim]`),
		pollTrue(`/^#\/referrals\/[\w-]+$/.test(location.hash)`),
		wait(`button[data-action="accept"]`))
	desk.shot("claimed")
	desk.run("open the accept dialog", 15*time.Second,
		clickLive(`button[data-action="accept"]`),
		wait(`dialog.modal #bed-pool .bed`))
	desk.shot("accept with bed pool")
	desk.run("accept", 15*time.Second,
		click(`dialog.modal button[type=submit]`),
		wait(`.badge.status-accepted`))
	desk.shot("accepted")

	// The doctor's page, never reloaded, shows the ticket accepted.
	doctor.run("the doctor sees it accepted live", 15*time.Second,
		wait(`.badge.status-accepted`),
		pollTrue(`window.__sameDocument === true`))
	doctor.shot("doctor sees accepted")
	desk.run("the desk never reloaded", 5*time.Second, pollTrue(`window.__sameDocument === true`))
	doctor.run("the attachment is on the ticket", 5*time.Second,
		pollTrue(`[...document.querySelectorAll(".ticket a")].some(a => a.textContent === "心电图.png" && a.getAttribute("href").startsWith("/api/v1/attachments/"))`))

	// The same screens on a tablet.
	desk.run("the board on a tablet", 15*time.Second,
		chromedp.EmulateViewport(1024, 768),
		eval(`location.hash = "#/desk"`),
		wait(`#board`),
		pollTrue(`document.querySelector("#inbound tr") !== null`))
	desk.shot("board on a tablet, the accepted ticket inbound")
	doctor.run("the ticket on a tablet in portrait", 15*time.Second,
		chromedp.EmulateViewport(768, 1024),
		wait(`#ticket-number`))
	doctor.shot("ticket on a tablet")

	for _, p := range []*page{doctor, desk} {
		if bad := p.problems(); len(bad) > 0 {
			t.Errorf("%s's console shows problems:\n%s", p.name, strings.Join(bad, "\n"))
		}
	}
}

// writePNG writes a small image to attach, as a scanned ECG would be.
func writePNG(t *testing.T, name string) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 64, 32))
	for x := 0; x < 64; x++ {
		img.Set(x, 16+(x%8)-4, color.White)
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}
