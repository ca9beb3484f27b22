package roomtest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"duikou/consult"
)

// remoteVideo is true once the page shows another participant's video
// playing: a tile's video element has a size and decoded frames.
const remoteVideo = `(() => {
  const v = [...document.querySelectorAll('.dk-tile:not([data-participant="__me"]) video')];
  return v.some(e => e.videoWidth > 0 && e.clientWidth > 0 && e.clientHeight > 0 && e.readyState >= 2);
})()`

// inboundVideoBytes sums the video bytes the page's PeerConnection received.
const inboundVideoBytes = `(async () => {
  const pc = window.room && window.room.peerConnection();
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.bytesReceived || 0; });
  return n;
})()`

// TestTwoCliniciansSeeEachOtherAfterTheHostAdmitsTheGuest is browser test
// 2: the specialist (host) and the county doctor (guest) check their fake
// camera and microphone and join a consultation; the doctor waits in the
// lobby until the host admits them from the lobby list; then each page
// plays the other's video, and the inbound RTP bytes keep growing. A chat
// line crosses, a dropped signalling connection resumes in place, and the
// audio-only switch stops and restores the video the host receives.
func TestTwoCliniciansSeeEachOtherAfterTheHostAdmitsTheGuest(t *testing.T) {
	w := newWorld(t)
	sessionID := w.session(t, consult.Consult, nil)
	b := newBrowser(t)
	host, guest := b.page("specialist"), b.page("doctor")

	host.open(w.srv.base, "sph.cardio", sessionID, "")
	host.waitJS("camera preview", `(() => { const v = document.querySelector('.dk-preview'); return !!v && v.videoWidth > 0; })()`, 15*time.Second)
	host.waitJS("device pickers filled", `document.querySelectorAll('#dk-cam option').length > 0 && document.querySelectorAll('#dk-mic option').length > 0`, 5*time.Second)
	host.shot("1-device-check")
	host.run("join", chromedp.Click(chromedp.CSS(".dk-check .dk-primary")))
	host.waitJS("in the room", `!!document.querySelector('.dk-tiles')`, 15*time.Second)

	guest.open(w.srv.base, "linxi.doctor", sessionID, "")
	guest.waitJS("camera preview", `(() => { const v = document.querySelector('.dk-preview'); return !!v && v.videoWidth > 0; })()`, 15*time.Second)
	guest.run("join", chromedp.Click(chromedp.CSS(".dk-check .dk-primary")))
	guest.waitJS("waiting in the lobby", `!!document.querySelector('.dk-lobby')`, 15*time.Second)
	guest.shot("2-lobby")
	// Nothing reaches the lobby: no media connection before admission.
	var hasPC bool
	if err := guest.eval(`!!window.room.peerConnection()`, &hasPC); err != nil || hasPC {
		t.Fatalf("the guest in the lobby has a media connection (%v)", err)
	}

	admit := fmt.Sprintf(`[data-lobby=%q] .dk-admit`, w.doctor.str("id"))
	host.waitJS("the guest in the host's lobby list", fmt.Sprintf(`!!document.querySelector(%q)`, admit), 10*time.Second)
	host.shot("3-lobby-list")
	host.run("admit", chromedp.Click(chromedp.CSS(admit)))

	guest.waitJS("admitted", `!!document.querySelector('.dk-tiles')`, 15*time.Second)
	for _, p := range []*page{host, guest} {
		p.waitJS("the other's video playing", remoteVideo, 30*time.Second)
	}
	for _, p := range []*page{host, guest} {
		var first, second float64
		if err := p.eval(inboundVideoBytes, &first); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := p.eval(inboundVideoBytes, &second); err != nil {
			t.Fatal(err)
		}
		if first <= 0 || second <= first {
			t.Errorf("%s: inbound video bytes %v then %v: not growing", p.name, first, second)
		}
		t.Logf("%s: inbound video bytes %v → %v in 1.5 s", p.name, first, second)
	}
	// The quality indicator has measured the connection by now.
	host.waitJS("quality measured", `document.querySelector('.dk-quality').dataset.level !== 'unknown'`, 10*time.Second)
	host.shot("4-in-call")
	guest.shot("4-in-call")

	// A chat line reaches the other side.
	guest.run("chat", chromedp.SendKeys(chromedp.ID("dk-chat-input"), "心电图已上传\n"))
	host.waitJS("the chat line", `[...document.querySelectorAll('.dk-chatlog li')].some(li => li.textContent.includes('心电图已上传'))`, 5*time.Second)

	// The doctor's signalling drops (a network blip): the page resumes its
	// place within the window, says so, and the media carries on over the
	// same PeerConnection; the host never sees the doctor leave.
	var before string
	if err := guest.eval(`window.room.state.me`, &before); err != nil {
		t.Fatal(err)
	}
	if err := guest.eval(`(() => { window.__pc = window.room.peerConnection(); window.room.dropConnection(); return true; })()`, new(bool)); err != nil {
		t.Fatal(err)
	}
	guest.waitJS("reconnected", `document.querySelector('.dk-banner').dataset.kind === 'ok' && !document.querySelector('.dk-banner').hidden && document.querySelector('.dk-room').dataset.conn === 'open'`, 10*time.Second)
	guest.shot("5-reconnected")
	var same bool
	if err := guest.eval(`window.room.state.me === `+fmt.Sprintf("%q", before)+` && window.__pc === window.room.peerConnection()`, &same); err != nil || !same {
		t.Fatalf("after the resume the doctor is another participant or has another PeerConnection (%v)", err)
	}
	var first, second float64
	if err := guest.eval(inboundVideoBytes, &first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := guest.eval(inboundVideoBytes, &second); err != nil || second <= first {
		t.Errorf("after the resume the doctor's inbound video bytes went %v → %v (%v)", first, second, err)
	}
	var left bool
	if err := host.eval(`(window.duikouLog || []).some(l => l.includes('离开了会诊'))`, &left); err != nil || left {
		t.Errorf("the host saw the doctor leave during the resume (%v)", err)
	}

	// Audio only: the host's link stops receiving video (the relay drops
	// it) and the doctor sees the host's camera as off; switching back
	// brings the doctor's video back.
	host.run("audio only", chromedp.Click(chromedp.CSS(`.dk-controls [data-ctl=audioonly]`)))
	guest.waitJS("the host's video off", fmt.Sprintf(`(() => { const li = document.querySelector('li[data-participant=%q]'); return !!li && window.room.state.participants.get(%q).video_muted === true; })()`, w.specialist.str("id"), w.specialist.str("id")), 5*time.Second)
	host.waitJS("no video arriving", `(async () => {
	  const a = await (`+inboundVideoBytes+`);
	  await new Promise(r => setTimeout(r, 1000));
	  const b = await (`+inboundVideoBytes+`);
	  return a === b;
	})()`, 10*time.Second)
	host.shot("6-audio-only")
	host.run("video back", chromedp.Click(chromedp.CSS(`.dk-controls [data-ctl=audioonly]`)))
	host.waitJS("the doctor's video again", `(async () => {
	  const a = await (`+inboundVideoBytes+`);
	  await new Promise(r => setTimeout(r, 700));
	  const b = await (`+inboundVideoBytes+`);
	  return b > a;
	})() `, 15*time.Second)
	host.waitJS("playing", remoteVideo, 10*time.Second)
}

// rendered reads, from the DICOM library itself, what a viewer shows.
const rendered = `(() => { const r = window.room && window.room.viewer && window.room.viewer.rendered(); return r ? JSON.stringify(r) : ''; })()`

type view struct {
	Image  string  `json:"image"`
	Kind   string  `json:"kind"`
	Slice  int     `json:"slice"`
	Slices int     `json:"slices"`
	WC     float64 `json:"window_center"`
	WW     float64 `json:"window_width"`
	Zoom   float64 `json:"zoom"`
	Annots int     `json:"annotations"`
	Vseq   int     `json:"vseq"`
}

func (p *page) view() view {
	p.b.t.Helper()
	var s string
	if err := p.eval(rendered, &s); err != nil {
		p.b.t.Fatal(err)
	}
	var v view
	if s != "" {
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			p.b.t.Fatal(err)
		}
	}
	return v
}

// TestFollowerSeesThePresentersSliceAndWindow is browser test 3, an imaging
// review: the county doctor sent a multi-frame CT; the specialist presents
// it (two frames), scrolls to the other slice and narrows and lowers the window by dragging; the
// doctor's viewer shows the same slice and window within a second. Then the
// specialist hands the presenter role to the doctor, whose arrow and slice
// the specialist follows, and a page loaded afresh shows the view at once.
func TestFollowerSeesThePresentersSliceAndWindow(t *testing.T) {
	w := newWorld(t)
	ct := w.doctor.upload("../../attachment/testdata/ct-multiframe.dcm", "application/dicom", w.patientID)
	photo := w.doctor.upload("../../attachment/testdata/video-001.png", "image/png", w.patientID)
	sessionID := w.session(t, consult.ImagingReview, []consult.Attachment{ct, photo})
	b := newBrowser(t)
	presenter, follower := b.page("specialist"), b.page("doctor")

	presenter.open(w.srv.base, "sph.cardio", sessionID, "&skipcheck=1")
	presenter.waitJS("in the room", `!!document.querySelector('.dk-tiles')`, 15*time.Second)
	follower.open(w.srv.base, "linxi.doctor", sessionID, "&skipcheck=1")
	admit := fmt.Sprintf(`[data-lobby=%q] .dk-admit`, w.doctor.str("id"))
	presenter.waitJS("the doctor in the lobby", fmt.Sprintf(`!!document.querySelector(%q)`, admit), 15*time.Second)
	presenter.run("admit", chromedp.Click(chromedp.CSS(admit)))

	loaded := fmt.Sprintf(`document.querySelector('.dk-imaging') && document.querySelector('.dk-imaging').dataset.loaded === %q`, ct.ID)
	presenter.waitJS("the CT loaded", loaded, 30*time.Second)
	presenter.waitJS("presenting", `document.querySelector('.dk-imaging').dataset.role === 'presenter'`, 5*time.Second)
	follower.waitJS("the CT loaded", loaded, 30*time.Second)
	follower.waitJS("following", `document.querySelector('.dk-imaging').dataset.role === 'follower'`, 5*time.Second)

	start := presenter.view()
	if start.Kind != "dicom" || start.Slices < 2 || start.Slice != 0 {
		t.Fatalf("the presenter's viewer shows %+v, want the multi-frame CT", start)
	}
	// The follower joined after the presenter chose the image: it was
	// given the current view at once.
	waitSame(t, follower, start, time.Now(), 5*time.Second)
	presenter.shot("1-start")
	follower.shot("1-start")

	// The next slice with the keyboard, then a window/level drag.
	presenter.run("scroll a slice",
		chromedp.Focus(chromedp.CSS(".dk-img-stage")),
		chromedp.KeyEvent(kb.ArrowDown),
	)
	var box []float64
	if err := presenter.eval(`(() => { const r = document.querySelector('.dk-img-stage').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`, &box); err != nil {
		t.Fatal(err)
	}
	x, y := box[0], box[1]
	presenter.run("window/level drag",
		chromedp.MouseEvent(chromedp.MousePressed, x, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, x-40, y-30, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, x-80, y-60, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, x-80, y-60, chromedp.ButtonLeft),
	)
	changed := time.Now()
	want := presenter.view()
	if want.Slice != start.Slice+1 || want.WW >= start.WW || want.WC >= start.WC {
		t.Fatalf("the presenter's view went from %+v to %+v: want the next slice, a narrower window, a lower level", start, want)
	}
	took := waitSame(t, follower, want, changed, time.Second)
	t.Logf("the follower showed slice %d, W %v L %v %s after the presenter's last change", want.Slice, want.WW, want.WC, took.Round(time.Millisecond))
	presenter.shot("2-changed")
	follower.shot("2-followed")

	// The status lines agree too: what a person reads on both screens.
	var a, bl string
	if err := presenter.eval(`document.querySelector('[data-testid=imaging-status]').textContent`, &a); err != nil {
		t.Fatal(err)
	}
	if err := follower.eval(`document.querySelector('[data-testid=imaging-status]').textContent`, &bl); err != nil {
		t.Fatal(err)
	}
	if a != bl || a == "" {
		t.Errorf("status lines differ: presenter %q, follower %q", a, bl)
	}

	// The specialist hands the presenter role to the doctor, who marks the
	// image with an arrow, goes back a slice and zooms in; now the
	// specialist follows.
	give := fmt.Sprintf(`li[data-participant=%q] button`, w.doctor.str("id"))
	presenter.run("hand the presenter role over", chromedp.Click(chromedp.CSS(give)))
	follower.waitJS("presenting now", `document.querySelector('.dk-imaging').dataset.role === 'presenter'`, 5*time.Second)
	presenter.waitJS("following now", `document.querySelector('.dk-imaging').dataset.role === 'follower'`, 5*time.Second)
	follower.run("arrow tool", chromedp.Click(chromedp.CSS(`.dk-img-tools [data-tool=arrow]`)))
	if err := follower.eval(`(() => { const r = document.querySelector('.dk-img-stage').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`, &box); err != nil {
		t.Fatal(err)
	}
	x, y = box[0], box[1]
	follower.run("draw an arrow and go back a slice",
		chromedp.MouseEvent(chromedp.MousePressed, x-60, y-60, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, x-30, y-30, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft),
		chromedp.Focus(chromedp.CSS(".dk-img-stage")),
		chromedp.KeyEvent(kb.ArrowUp),
		chromedp.KeyEvent("+"),
	)
	changed = time.Now()
	back := follower.view()
	if back.Slice != 0 || back.Annots != 1 || back.Zoom != 1.25 {
		t.Fatalf("the new presenter's view is %+v, want the first slice, one arrow, zoom 1.25", back)
	}
	waitSame(t, presenter, back, changed, time.Second)
	presenter.waitJS("the arrow shown", `document.querySelectorAll('.dk-img-overlay [data-kind=arrow]').length === 1`, time.Second)
	follower.shot("3-presenting-with-arrow")
	presenter.shot("3-following")

	// A late joiner (the specialist's page loaded afresh) is shown the
	// presenter's view at once, arrow included, with nothing new sent.
	presenter.run("reload", chromedp.Reload())
	presenter.waitJS("the CT loaded again", loaded, 30*time.Second)
	waitSame(t, presenter, back, time.Now(), 5*time.Second)
	presenter.waitJS("the arrow shown again", `document.querySelectorAll('.dk-img-overlay [data-kind=arrow]').length === 1`, time.Second)
	presenter.shot("4-late-joiner")

	// An ordinary picture is shown the same way.
	follower.run("choose the photograph", chromedp.Click(chromedp.CSS(`.dk-img-list li:nth-child(2) button`)))
	pic := fmt.Sprintf(`document.querySelector('.dk-imaging').dataset.loaded === %q`, photo.ID)
	follower.waitJS("the photograph shown", pic, 10*time.Second)
	shown := follower.view()
	if shown.Kind != "image" || shown.Image != photo.ID {
		t.Fatalf("the presenter shows %+v, want the photograph", shown)
	}
	presenter.waitJS("the photograph followed", pic, 10*time.Second)
	waitSame(t, presenter, shown, time.Now(), 5*time.Second)
	// And the page loaded afresh has the doctor's video again.
	presenter.waitJS("the doctor's video after the reload", remoteVideo, 15*time.Second)
	presenter.shot("5-photograph")
}

// waitSame waits until p's viewer shows want's image, slice, window and
// zoom, and says how long that took.
func waitSame(t *testing.T, p *page, want view, start time.Time, within time.Duration) time.Duration {
	t.Helper()
	var got view
	for time.Since(start) < within {
		got = p.view()
		if got.Image == want.Image && got.Slice == want.Slice && got.WC == want.WC && got.WW == want.WW && got.Zoom == want.Zoom {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.shot("failed-sync")
	t.Fatalf("%s shows %+v after %s, want image %s slice %d W %v L %v zoom %v", p.name, got, within, want.Image, want.Slice, want.WW, want.WC, want.Zoom)
	return 0
}
