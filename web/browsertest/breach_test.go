package browsertest

import (
	"fmt"
	"testing"
	"time"
)

// TestBreachIsFlaggedOnTheBoard: with a green channel due to be claimed in
// two seconds, an unclaimed green ticket turns overdue on the board, is
// flagged as breached when the deadline watcher escalates it (pushed, no
// reload), and its page lists the escalation. "Claim next" then takes it.
func TestBreachIsFlaggedOnTheBoard(t *testing.T) {
	base := startServer(t, "-referral-deadlines", "green=2s/4s")
	b := newBrowser(t)
	desk := b.page(t, "desk", base)
	desk.login("sph.desk", "#/desk")
	desk.run("the board is live", 15*time.Second, wait(`#board`),
		pollTrue(`document.querySelector("#live-state").classList.contains("live")`))

	doctor := apiLogin(t, base, "linxi.doctor")
	deskAPI := apiLogin(t, base, "sph.desk")
	tk := refer(t, doctor, deskAPI, "冯军", "I63.9", "脑梗死", "emergency", "stroke")
	row := fmt.Sprintf(`#board li.ticket-row[data-number=%q]`, tk.Number)
	desk.run("the ticket arrives green", 15*time.Second, wait(row+`.green`))
	desk.run("it turns overdue, then is flagged breached", 30*time.Second,
		wait(row+`.overdue`),
		wait(row+`.breached .badge.breach`),
		pollTrue(fmt.Sprintf(`document.querySelector(%q).textContent.startsWith("−")`, row+` .countdown`)))
	desk.shot("breach flagged")
	desk.run("the ticket lists its escalation", 15*time.Second,
		eval(fmt.Sprintf(`location.hash = "#/referrals/%s"`, tk.ID)),
		wait(`.escalations li`))
	desk.shot("escalation on the ticket")
	desk.run("claim next takes the overdue green ticket", 15*time.Second,
		eval(`location.hash = "#/desk"`),
		wait(row),
		clickLive(`#claim-next`),
		pollTrue(fmt.Sprintf(`location.hash === "#/referrals/%s"`, tk.ID)),
		wait(`.badge.status-claimed`),
		wait(`button[data-action="accept"]`))
	if bad := desk.problems(); len(bad) > 0 {
		t.Errorf("console shows problems:\n%v", bad)
	}
}
