package browsertest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestEveryRoleHasAHome: each demo role signs in, lands on its own home, the
// page draws without a script error or a missing message, and signing out
// returns to the login page.
func TestEveryRoleHasAHome(t *testing.T) {
	base := startServer(t)
	doctor := apiLogin(t, base, "linxi.doctor")
	deskAPI := apiLogin(t, base, "sph.desk")
	decide(deskAPI, referUp(t, doctor, deskAPI, "吴芳", "I63.9", "脑梗死", "urgent"))
	referUp(t, doctor, deskAPI, "郑伟", "J44.1", "慢性阻塞性肺病伴有急性加重", "routine")

	b := newBrowser(t)
	visitor := b.page(t, "visitor", base)
	visitor.run("a wrong password is refused on the page", 15*time.Second,
		chromedp.Navigate(base+"/"),
		waitHash("#/login"),
		keys(`input[name=username]`, "linxi.doctor"),
		keys(`input[name=password]`, "not-the-password"),
		click(`form.login-form button[type=submit]`),
		pollTrue(`!document.querySelector("form.login-form .form-error").hidden`),
		pollTrue(`location.hash === "#/login"`))
	visitor.shot("login refused")

	for _, tc := range []struct{ user, home, ready string }{
		{"linxi.doctor", "#/doctor", `table.list[data-list="out"] tbody tr`},
		{"sph.desk", "#/desk", `#board li.ticket-row`},
		{"sph.cardio", "#/sessions", `table.list[data-list="in"]`},
		{"commission.office", "#/office", `#dashboard svg.chart`},
		{"admin", "#/home", `main h1`},
	} {
		t.Run(tc.user, func(t *testing.T) {
			p := b.page(t, tc.user, base)
			p.login(tc.user, tc.home)
			p.run("the home draws", 15*time.Second, wait(tc.ready), wait(`#nav`))
			p.shot("home")
			p.run("sign out", 15*time.Second, click(`#logout`), waitHash("#/login"), wait(`input[name=username]`))
			if bad := p.problems(); len(bad) > 0 {
				t.Errorf("console shows problems:\n%v", bad)
			}
		})
	}
}
