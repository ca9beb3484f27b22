package browsertest

import (
	"testing"
	"time"
)

// TestDoctorBooksRemoteClinic: the county doctor lists the remote-clinic
// slots the specialists published (the demo's cardiologist has some), books
// a place for a patient, recording the two consents the booking needs, and
// lands on the expert-clinic session, scheduled at the slot's time, from
// which the room opens in the shell.
func TestDoctorBooksRemoteClinic(t *testing.T) {
	base := startServer(t)
	doctorAPI := apiLogin(t, base, "linxi.doctor")
	// Registering the patient is not what this test is about.
	doctorAPI.call("POST", "/patients", map[string]string{"name": "赵秀英", "sex": "female", "birth_date": "1958-09-02", "home_hospital_id": doctorAPI.user.HospitalID}, 0, nil)

	b := newBrowser(t)
	doctor := b.page(t, "doctor", base)
	doctor.login("linxi.doctor", "#/doctor")
	doctor.run("the slots are listed", 15*time.Second,
		eval(`location.hash = "#/clinic"`),
		wait(`#slots a[data-slot]`))
	doctor.shot("slots")
	doctor.run("book one", 20*time.Second,
		clickLive(`#slots a[data-slot]`),
		wait(`#patient-q`),
		keys(`#patient-q`, "赵秀英\r"),
		clickLive(`#patient-results button.pick`),
		wait(`#record-remote_consultation`),
		click(`#record-remote_consultation`),
		wait(`.consent-state[data-purpose="remote_consultation"] .status-accepted`),
		wait(`#record-data_sharing`),
		click(`#record-data_sharing`),
		wait(`.consent-state[data-purpose="data_sharing"] .status-accepted`),
		choose(`#booking-department`, `[...document.querySelectorAll("#booking-department option")].find((o) => o.textContent === "内科").value`),
		keys(`#booking-question`, "高血压控制不佳，请调整用药"),
		keys(`#booking-summary`, "女，68岁，三联降压药血压仍160/95 mmHg"))
	doctor.shot("booking filled in")
	doctor.run("the booking is a scheduled expert-clinic session", 15*time.Second,
		click(`#book-slot`),
		wait(`.session[data-status="scheduled"]`),
		pollTrue(`document.querySelector("h1").textContent.includes("专家远程门诊")`),
		wait(`#join-room`))
	doctor.shot("booked")
	doctor.run("the room opens in the shell", 15*time.Second,
		click(`#join-room`),
		pollTrue(`/^#\/sessions\/[\w-]+\/room$/.test(location.hash)`),
		wait(`.dk-room`),
		pollTrue(`document.querySelector('link[href="/room/room.css"]') !== null`))
	doctor.shot("room")
	doctor.run("leaving the room goes back to the session", 15*time.Second,
		eval(`history.back()`),
		wait(`.session[data-status="scheduled"]`))
	doctor.run("the doctor's list of sessions has it", 15*time.Second,
		eval(`location.hash = "#/sessions"`),
		wait(`table[data-list="out"] tr[data-status="scheduled"]`),
		pollTrue(`document.querySelector('table[data-list="out"]').textContent.includes("赵秀英")`))
	doctor.shot("my sessions")

	// The specialist publishes another slot, at the form's suggested time
	// (the first week still open for publishing).
	specialist := b.page(t, "specialist", base)
	specialist.login("sph.cardio", "#/sessions")
	specialist.run("publish a slot", 15*time.Second,
		eval(`location.hash = "#/clinic"`),
		wait(`#slots tbody tr`),
		eval(`window.slotsBefore = document.querySelectorAll("#slots tbody tr").length`),
		choose(`#slot-department`, `[...document.querySelectorAll("#slot-department option")].find((o) => o.textContent === "心血管内科").value`),
		click(`#publish-slot`),
		pollTrue(`document.querySelectorAll("#slots tbody tr").length === window.slotsBefore + 1`))
	specialist.shot("slot published")
	for _, p := range []*page{doctor, specialist} {
		if bad := p.problems(); len(bad) > 0 {
			t.Errorf("%s's console shows problems:\n%v", p.name, bad)
		}
	}
}
