// The video room of a remote session: a camera and microphone check, the
// lobby, participant tiles, mute, audio only, screen sharing, raised hands,
// chat, connection quality, automatic reconnection, and the shared imaging
// viewer. Self-contained: the application shell mounts it with
//
//   const room = mountRoom(element, {sessionId, api, lang});
//
// where api is {get(path), post(path, body)} returning parsed JSON (and
// throwing on an error answer) and, optionally, blob(path) returning a
// Response for binary files (default: a same-origin fetch with the session
// cookie); opts.timeZone (default Asia/Shanghai) dates the chat. The returned
// handle has destroy(), which leaves and removes everything, and read-only
// views of the room's state for tests (state, viewer, peerConnection()).
//
// Media follows the relay (signaling/sfu): the server always offers; the
// client answers, sending its camera and microphone on the transceivers the
// server offers to receive on, and receives each other participant's tracks
// in a stream named by that participant's id.
import { translator } from "./messages.js";
import { RoomSocket } from "./signal.js";
import { mountImaging } from "./imaging.js";

const h = (tag, attrs = {}, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k != null) el.append(k);
  return el;
};

// directions maps each m-section's mid to its direction in an SDP.
function directions(sdp) {
  const out = {};
  for (const sec of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /a=mid:(\S+)/.exec(sec)?.[1];
    const dir = /a=(sendrecv|sendonly|recvonly|inactive)/.exec(sec)?.[1] || "sendrecv";
    if (mid != null) out[mid] = dir;
  }
  return out;
}

export function mountRoom(root, opts) {
  const { sessionId, api } = opts;
  const t = translator(opts.lang || "zh-CN");
  const blob = api.blob ? (p) => api.blob(p) : (p) => fetch(p, { credentials: "same-origin" });
  const log = opts.log || (() => {});

  const st = {
    phase: "check",
    ticket: null,
    me: "",
    perms: {},
    participants: new Map(), // id → info
    lobby: new Map(),
    presenter: "",
    tracks: new Map(), // participant → MediaStream
    speaking: new Set(),
    quality: new Map(), // participant → loss
    local: null, // MediaStream from getUserMedia
    screen: null,
    muted: false,
    camOff: false,
    audioOnly: false,
    hand: false,
    pc: null,
    pendingCandidates: [],
    stats: { loss: null, rtt: null, level: "unknown", inboundVideoBytes: 0 },
    statsTimer: 0,
    destroyed: false,
    sock: null,
  };

  root.classList.add("dk-room");
  root.replaceChildren();
  const announcer = h("div", { class: "dk-sr", "aria-live": "polite", role: "status" });
  const alerter = h("div", { class: "dk-banner", "aria-live": "assertive", role: "alert", hidden: true });
  const body = h("div", { class: "dk-body" });
  root.append(alerter, body, announcer);

  const say = (msg) => {
    announcer.textContent = "";
    // A new text node each time, so screen readers announce a repeat too.
    setTimeout(() => (announcer.textContent = msg), 30);
    log("event", msg);
  };
  const banner = (msg, kind = "warn") => {
    alerter.hidden = !msg;
    alerter.textContent = msg || "";
    alerter.dataset.kind = kind;
  };
  const nameOf = (id) => st.participants.get(id)?.name || st.lobby.get(id)?.name || id.slice(0, 8);

  // ---- 1. Camera and microphone check ----
  const preview = h("video", { class: "dk-preview", autoplay: true, muted: true, playsinline: true, "aria-label": t("room.check.camera") });
  preview.muted = true;
  const camSel = h("select", { id: "dk-cam" });
  const micSel = h("select", { id: "dk-mic" });
  const meter = h("meter", { id: "dk-level", min: 0, max: 1, value: 0 });
  const noCam = h("input", { type: "checkbox", id: "dk-nocam" });
  const checkErr = h("p", { class: "dk-error", role: "alert" });
  const joinBtn = h("button", { class: "dk-primary", type: "button", onclick: () => join() }, t("room.check.join"));
  let meterStop = () => {};

  async function openDevices() {
    const cam = camSel.value, mic = micSel.value;
    if (st.local) st.local.getTracks().forEach((tr) => tr.stop());
    try {
      st.local = await navigator.mediaDevices.getUserMedia({
        audio: mic ? { deviceId: { exact: mic } } : true,
        video: noCam.checked ? false : cam ? { deviceId: { exact: cam }, width: 640, height: 360 } : { width: 640, height: 360 },
      });
      checkErr.textContent = "";
    } catch (err) {
      // Audio alone, then nothing: a doctor without a camera still joins.
      try {
        st.local = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch {
        st.local = new MediaStream();
      }
      checkErr.textContent = t("room.check.denied", { err: err.message || err.name });
    }
    preview.srcObject = st.local;
    const devs = await navigator.mediaDevices.enumerateDevices();
    const fill = (sel, kind, current) => {
      const list = devs.filter((d) => d.kind === kind);
      sel.replaceChildren(...(list.length ? list.map((d, i) => h("option", { value: d.deviceId, text: d.label || `${kind} ${i + 1}` })) : [h("option", { value: "", text: t("room.check.none") })]));
      const live = st.local.getTracks().find((tr) => tr.kind === (kind === "videoinput" ? "video" : "audio"));
      sel.value = live?.getSettings().deviceId || current || sel.value;
    };
    fill(camSel, "videoinput", cam);
    fill(micSel, "audioinput", mic);
    meterStop();
    meterStop = levelMeter(st.local, meter);
  }

  function levelMeter(stream, el) {
    if (!stream.getAudioTracks().length || !window.AudioContext) return () => {};
    const ctx = new AudioContext();
    const an = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(an);
    const buf = new Float32Array(an.fftSize);
    let on = true;
    const tick = () => {
      if (!on) return;
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      el.value = Math.min(1, Math.sqrt(sum / buf.length) * 4);
      setTimeout(tick, 100);
    };
    tick();
    return () => {
      on = false;
      ctx.close();
    };
  }

  function showCheck() {
    camSel.onchange = micSel.onchange = noCam.onchange = () => openDevices();
    body.replaceChildren(
      h("section", { class: "dk-check", "aria-labelledby": "dk-check-title" },
        h("h2", { id: "dk-check-title", text: t("room.check.title") }),
        preview,
        h("div", { class: "dk-fields" },
          h("label", { for: "dk-cam", text: t("room.check.camera") }), camSel,
          h("label", { for: "dk-mic", text: t("room.check.microphone") }), micSel,
          h("label", { for: "dk-level", text: t("room.check.level") }), meter,
          h("span"), h("label", { class: "dk-inline" }, noCam, " ", t("room.check.nocamera"))),
        checkErr, joinBtn));
    openDevices();
  }

  // ---- 2. Joining, the lobby, reconnection ----
  async function ticket() {
    const tk = await api.post(`/api/v1/sessions/${encodeURIComponent(sessionId)}/join`, {});
    st.ticket = tk;
    st.perms = tk.permissions || {};
    return tk;
  }

  async function join() {
    joinBtn.disabled = true;
    meterStop();
    st.camOff = noCam.checked || !st.local.getVideoTracks().length;
    body.replaceChildren(h("p", { class: "dk-wait", text: t("room.joining") }));
    try {
      await ticket();
    } catch (err) {
      body.replaceChildren(h("p", { class: "dk-error", role: "alert", text: t("room.error", { msg: err.message || err }) }));
      return;
    }
    st.sock = new RoomSocket(st.ticket, ticket);
    st.sock.addEventListener("message", (e) => onMessage(e.detail.msg));
    st.sock.addEventListener("state", (e) => onSocketState(e.detail));
    st.sock.connect();
  }

  let reconnectTick = 0;
  function onSocketState(s) {
    log("socket", JSON.stringify(s));
    clearInterval(reconnectTick);
    root.dataset.conn = s.state;
    if (s.state === "connecting") {
      // A join (not a resume) starts a new PeerConnection on the server.
      closePeer();
    } else if (s.state === "reconnecting") {
      const show = () => banner(t("room.conn.reconnecting", { left: st.sock._left() }));
      show();
      reconnectTick = setInterval(show, 1000);
    } else if (s.state === "rejoining") {
      banner(t("room.conn.lost"));
    } else if (s.state === "open") {
      if (alerter.textContent && !alerter.hidden) {
        banner(t("room.conn.reconnected"), "ok");
        say(t("room.conn.reconnected"));
        setTimeout(() => alerter.dataset.kind === "ok" && banner(""), 3000);
      }
    } else if (s.state === "closed") {
      const why = s.code === 4403 ? "room.conn.removed" : s.code === 4409 ? "room.conn.replaced" : "room.conn.ended";
      teardown();
      banner(t(why), s.code === 1000 ? "ok" : "warn");
      body.replaceChildren(h("p", { class: "dk-wait", text: t(why) }));
    }
  }

  function showLobby() {
    st.phase = "lobby";
    const small = preview;
    small.classList.add("dk-small");
    body.replaceChildren(h("section", { class: "dk-lobby", "aria-labelledby": "dk-lobby-title" },
      h("h2", { id: "dk-lobby-title", text: t("room.lobby.title") }),
      h("p", { text: t("room.lobby.wait") }), small));
    say(t("room.lobby.wait"));
  }

  function onMessage(m) {
    const p = m.payload || {};
    switch (m.type) {
      case "lobby":
        showLobby();
        break;
      case "welcome":
        st.me = p.participant;
        st.presenter = p.presenter || "";
        st.participants = new Map((p.participants || []).map((x) => [x.id, x]));
        st.lobby = new Map((p.lobby || []).map((x) => [x.id, x]));
        if (st.phase !== "room") showRoom();
        else render();
        // Our own state survives a resume on the server; after a new join
        // it is told again.
        if (!p.resumed) sendMute();
        if (st.audioOnly) st.sock.send("audio_only", { on: true });
        viewer?.setPresenter(st.presenter, st.presenter === st.me, nameOf(st.presenter));
        break;
      case "offer":
        onOffer(p.sdp);
        break;
      case "candidate":
        if (st.pc && st.pc.remoteDescription) st.pc.addIceCandidate(p).catch((e) => log("ice", String(e)));
        else st.pendingCandidates.push(p);
        break;
      case "participant_joined":
        st.participants.set(p.id, p);
        say(t("room.event.joined", { name: p.name || p.id }));
        render();
        break;
      case "participant_left":
        say(t("room.event.left", { name: nameOf(p.participant) }));
        st.participants.delete(p.participant);
        st.tracks.delete(p.participant);
        render();
        break;
      case "lobby_waiting":
        st.lobby.set(p.id, p);
        say(t("room.lobby.waiting", { name: p.name || p.id }));
        render();
        break;
      case "lobby_left":
        st.lobby.delete(p.participant);
        render();
        break;
      case "mute": {
        const q = st.participants.get(p.participant);
        if (q) Object.assign(q, { audio_muted: p.audio, video_muted: p.video });
        render();
        break;
      }
      case "hand": {
        const q = st.participants.get(p.participant);
        if (q) q.hand = p.raised;
        if (p.raised) say(t("room.event.hand", { name: nameOf(p.participant) }));
        render();
        break;
      }
      case "chat":
        addChat(p);
        break;
      case "present":
        st.presenter = p.participant || "";
        say(st.presenter ? t("room.event.presenter", { name: nameOf(st.presenter) }) : t("room.event.nopresenter"));
        viewer?.setPresenter(st.presenter, st.presenter === st.me, nameOf(st.presenter));
        render();
        break;
      case "viewport":
        viewer?.apply(p);
        break;
      case "speaking":
        if (p.speaking) st.speaking.add(p.participant);
        else st.speaking.delete(p.participant);
        renderTiles();
        break;
      case "quality":
        st.quality.set(p.participant, p.loss);
        renderTiles();
        break;
      case "track_unpublished": {
        const ms = st.tracks.get(p.participant);
        if (ms) for (const tr of ms.getTracks()) if (tr.kind === p.kind) ms.removeTrack(tr);
        renderTiles();
        break;
      }
      case "removed":
        break;
      case "error":
        log("error", JSON.stringify(p));
        if (p.code !== "invalid" || !/seq/.test(p.message)) say(t("room.error", { msg: p.message }));
        break;
    }
  }

  // ---- 3. Media ----
  function closePeer() {
    if (st.pc) {
      st.pc.close();
      st.pc = null;
    }
    st.pendingCandidates = [];
    st.tracks.clear();
  }

  function peer() {
    if (st.pc) return st.pc;
    const pc = new RTCPeerConnection({ iceServers: st.ticket.ice_servers || [] });
    pc.onicecandidate = (e) => {
      // The server takes exactly RTCIceCandidateInit's three fields.
      if (e.candidate && e.candidate.candidate) {
        const { candidate, sdpMid, sdpMLineIndex } = e.candidate;
        st.sock.send("candidate", { candidate, sdpMid, sdpMLineIndex });
      }
    };
    pc.ontrack = (e) => {
      const pid = e.streams[0]?.id || e.track.id.replace(/-(audio|video)$/, "");
      log("track", `${pid} ${e.track.kind} ${e.track.id}`);
      let ms = st.tracks.get(pid);
      if (!ms) {
        ms = new MediaStream();
        st.tracks.set(pid, ms);
      }
      for (const old of ms.getTracks()) if (old.kind === e.track.kind && old !== e.track) ms.removeTrack(old);
      ms.addTrack(e.track);
      e.track.onended = () => {
        ms.removeTrack(e.track);
        renderTiles();
      };
      renderTiles();
    };
    pc.onconnectionstatechange = () => {
      root.dataset.media = pc.connectionState;
      log("media", pc.connectionState);
    };
    st.pc = pc;
    return pc;
  }

  function outgoing(kind) {
    if (kind === "audio") return st.local?.getAudioTracks()[0] || null;
    if (st.screen) return st.screen.getVideoTracks()[0];
    if (st.camOff || st.audioOnly) return null;
    return st.local?.getVideoTracks()[0] || null;
  }

  function sender(kind) {
    return st.pc?.getTransceivers().find((tr) => tr.sender.__dkKind === kind)?.sender;
  }

  async function onOffer(sdp) {
    const pc = peer();
    try {
      await pc.setRemoteDescription({ type: "offer", sdp });
      // The server receives our camera and microphone on the first audio
      // and the first video section it offers (the relay creates those
      // before anything else); it may send another participant's track on
      // them too (sendrecv), and sends the rest on sections of their own.
      const dirs = directions(sdp);
      log("offer", JSON.stringify(dirs));
      if (st.perms.publish) {
        for (const tr of pc.getTransceivers()) {
          const kind = tr.receiver.track.kind;
          const dir = dirs[tr.mid];
          if (tr.sender.__dkKind !== kind && (sender(kind) || !/recv/.test(dir || ""))) continue;
          tr.sender.__dkKind = kind;
          tr.direction = dir === "recvonly" ? "sendonly" : "sendrecv";
          if (tr.sender.track !== outgoing(kind)) await tr.sender.replaceTrack(outgoing(kind));
        }
      }
      const ans = await pc.createAnswer();
      await pc.setLocalDescription(ans);
      st.sock.send("answer", { sdp: pc.localDescription.sdp });
      for (const c of st.pendingCandidates.splice(0)) pc.addIceCandidate(c).catch(() => {});
    } catch (err) {
      log("offer", String(err));
    }
  }

  function sendMute() {
    st.sock?.send("mute", { audio: st.muted, video: st.camOff || st.audioOnly || !outgoing("video") });
  }

  function toggleMute() {
    st.muted = !st.muted;
    st.local?.getAudioTracks().forEach((tr) => (tr.enabled = !st.muted));
    sendMute();
    render();
  }

  async function ensureCamera() {
    if (st.local?.getVideoTracks().some((tr) => tr.readyState === "live")) return;
    try {
      const cam = await navigator.mediaDevices.getUserMedia({ video: camSel.value ? { deviceId: { exact: camSel.value } } : true });
      for (const tr of st.local.getVideoTracks()) st.local.removeTrack(tr);
      st.local.addTrack(cam.getVideoTracks()[0]);
    } catch (err) {
      say(t("room.check.denied", { err: err.message || err.name }));
    }
  }

  async function toggleCamera() {
    st.camOff = !st.camOff;
    if (st.camOff) st.local?.getVideoTracks().forEach((tr) => tr.stop());
    else await ensureCamera();
    await sender("video")?.replaceTrack(outgoing("video"));
    sendMute();
    render();
  }

  // Audio only: a weak link stops receiving video (the relay unsubscribes
  // it) and stops sending its own.
  async function toggleAudioOnly() {
    st.audioOnly = !st.audioOnly;
    st.sock.send("audio_only", { on: st.audioOnly });
    if (st.audioOnly) st.local?.getVideoTracks().forEach((tr) => tr.stop());
    else if (!st.camOff) await ensureCamera();
    await sender("video")?.replaceTrack(outgoing("video"));
    sendMute();
    render();
  }

  async function toggleShare() {
    if (st.screen) {
      st.screen.getTracks().forEach((tr) => tr.stop());
      st.screen = null;
    } else {
      try {
        st.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
        st.screen.getVideoTracks()[0].onended = () => {
          if (st.screen) toggleShare();
        };
      } catch (err) {
        log("share", String(err));
        return;
      }
    }
    await sender("video")?.replaceTrack(outgoing("video"));
    sendMute();
    render();
  }

  function toggleHand() {
    st.hand = !st.hand;
    st.sock.send("hand", { raised: st.hand });
    render();
  }

  // Quality: the relay reports loss it hears from our receiver reports;
  // getStats gives our own view of loss and round trip every two seconds.
  let lastIn = null;
  async function sampleStats() {
    if (!st.pc) return;
    const rep = await st.pc.getStats();
    let lost = 0, recv = 0, rtt = null, vbytes = 0;
    rep.forEach((r) => {
      if (r.type === "inbound-rtp") {
        lost += r.packetsLost || 0;
        recv += r.packetsReceived || 0;
        if (r.kind === "video") vbytes += r.bytesReceived || 0;
      }
      if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime != null) rtt = r.currentRoundTripTime;
    });
    let loss = 0;
    if (lastIn) {
      const dl = lost - lastIn.lost, dr = recv - lastIn.recv;
      loss = dl + dr > 0 ? Math.max(0, dl) / (dl + dr) : 0;
    }
    lastIn = { lost, recv };
    const relayLoss = Math.max(0, ...st.quality.values());
    const worst = Math.max(loss, relayLoss);
    const rttMs = rtt == null ? null : Math.round(rtt * 1000);
    const level = worst > 0.08 || (rttMs ?? 0) > 600 ? "poor" : worst > 0.02 || (rttMs ?? 0) > 300 ? "fair" : "good";
    st.stats = { loss: worst, rtt: rttMs, level, inboundVideoBytes: vbytes };
    renderQuality();
  }

  // ---- 4. The room's screen ----
  let tilesEl, partsEl, lobbyEl, chatLog, chatInput, qualityEl, controlsEl, viewer, viewerEl;

  function showRoom() {
    st.phase = "room";
    preview.classList.remove("dk-small");
    tilesEl = h("div", { class: "dk-tiles", role: "list", "aria-label": t("room.participants") });
    partsEl = h("ul", { class: "dk-parts" });
    lobbyEl = h("section", { class: "dk-lobbylist", "aria-labelledby": "dk-lobbylist-title" });
    chatLog = h("ol", { class: "dk-chatlog", "aria-live": "polite", "aria-label": t("room.chat") });
    chatInput = h("input", { id: "dk-chat-input", type: "text", maxlength: 2000, placeholder: t("room.chat.placeholder"), autocomplete: "off" });
    const chatForm = h("form", { class: "dk-chatform", onsubmit: (e) => {
      e.preventDefault();
      const text = chatInput.value.trim();
      if (!text) return;
      st.sock.send("chat", { text });
      chatInput.value = "";
    } }, h("label", { for: "dk-chat-input", class: "dk-sr", text: t("room.chat.placeholder") }), chatInput,
    h("button", { type: "submit", text: t("room.chat.send") }));
    qualityEl = h("div", { class: "dk-quality", role: "status", "aria-label": t("room.quality") });
    controlsEl = h("div", { class: "dk-controls", role: "toolbar", "aria-label": t("room.controls") });
    viewerEl = h("section", { class: "dk-imaging", "aria-label": t("img.title") });
    body.replaceChildren(
      h("div", { class: "dk-main" },
        h("div", { class: "dk-stage" }, tilesEl, controlsEl, viewerEl),
        h("aside", { class: "dk-side" },
          qualityEl,
          lobbyEl,
          h("section", { "aria-labelledby": "dk-parts-title" }, h("h3", { id: "dk-parts-title", text: t("room.participants") }), partsEl),
          h("section", { class: "dk-chat", "aria-labelledby": "dk-chat-title" }, h("h3", { id: "dk-chat-title", text: t("room.chat") }), chatLog, chatForm))));
    viewer = mountImaging(viewerEl, {
      sessionId, api, blob, lang: opts.lang, log,
      send: (state) => st.sock?.send("viewport", state),
      takePresenter: () => st.sock?.send("present", { participant: st.me }),
      canPresent: !!st.perms.present,
    });
    viewer.setPresenter(st.presenter, st.presenter === st.me, nameOf(st.presenter));
    clearInterval(st.statsTimer);
    const sample = () => sampleStats().catch((e) => log("stats", String(e)));
    setTimeout(sample, 700);
    st.statsTimer = setInterval(sample, 2000);
    render();
  }

  function ctl(label, on, pressed) {
    return h("button", { type: "button", "aria-pressed": pressed == null ? undefined : String(!!pressed), onclick: on, text: label });
  }

  function render() {
    if (st.phase !== "room") return;
    renderTiles();
    renderQuality();
    // Participants, with host and presenter controls.
    partsEl.replaceChildren(...[...st.participants.values()].map((q) => {
      const tags = [];
      if (q.perms?.admit) tags.push(t("room.host"));
      if (q.id === st.presenter) tags.push(t("room.presenter"));
      if (q.hand) tags.push("✋ " + t("room.handRaised"));
      if (q.audio_muted) tags.push(t("room.muted"));
      if (q.away) tags.push(t("room.away"));
      const canGive = q.perms?.present && q.id !== st.presenter && (st.presenter === st.me || st.perms.admit);
      return h("li", { "data-participant": q.id },
        h("span", { class: "dk-name", text: (q.name || q.id) + (q.id === st.me ? t("room.you") : "") }),
        tags.length ? h("span", { class: "dk-tags", text: " · " + tags.join(" · ") }) : null,
        canGive ? h("button", { type: "button", class: "dk-small-btn", onclick: () => st.sock.send("present", { participant: q.id }), text: t("room.makePresenter") }) : null,
        st.perms.admit && q.id !== st.me ? h("button", { type: "button", class: "dk-small-btn", onclick: () => st.sock.send("remove", { participant: q.id }), text: t("room.lobby.remove") }) : null);
    }));
    // The lobby, for hosts.
    if (st.perms.admit) {
      const items = [...st.lobby.values()];
      lobbyEl.replaceChildren(h("h3", { id: "dk-lobbylist-title", text: t("room.lobby.list") + ` (${items.length})` }),
        items.length ? h("ul", {}, ...items.map((q) => h("li", { "data-lobby": q.id },
          h("span", { class: "dk-name", text: q.name || q.id }), " ",
          h("button", { type: "button", class: "dk-admit", onclick: () => st.sock.send("admit", { participant: q.id }), text: t("room.lobby.admit") }), " ",
          h("button", { type: "button", class: "dk-small-btn", onclick: () => st.sock.send("remove", { participant: q.id }), text: t("room.lobby.remove") }))))
          : h("p", { class: "dk-muted", text: t("room.lobby.empty") }));
      lobbyEl.hidden = false;
    } else {
      lobbyEl.hidden = true;
    }
    const focused = document.activeElement && controlsEl.contains(document.activeElement) ? document.activeElement.dataset.ctl : null;
    const btns = [
      ["mute", ctl(st.muted ? t("room.ctl.unmute") : t("room.ctl.mute"), toggleMute, st.muted)],
      ["cam", ctl(st.camOff ? t("room.ctl.camOn") : t("room.ctl.camOff"), toggleCamera, st.camOff)],
      ["audioonly", ctl(st.audioOnly ? t("room.ctl.audioOnlyOff") : t("room.ctl.audioOnly"), toggleAudioOnly, st.audioOnly)],
      ["share", ctl(st.screen ? t("room.ctl.stopShare") : t("room.ctl.share"), toggleShare, !!st.screen)],
      ["hand", ctl(st.hand ? t("room.ctl.lowerHand") : t("room.ctl.hand"), toggleHand, st.hand)],
      ["leave", ctl(t("room.ctl.leave"), () => st.sock.leave())],
    ];
    for (const [k, b] of btns) b.dataset.ctl = k;
    btns[btns.length - 1][1].classList.add("dk-danger");
    controlsEl.replaceChildren(...btns.map(([, b]) => b));
    if (focused) controlsEl.querySelector(`[data-ctl="${focused}"]`)?.focus();
  }

  // Tiles are kept (not rebuilt) so that playing videos are not restarted.
  const tileEls = new Map();
  function tile(id) {
    let el = tileEls.get(id);
    if (!el) {
      const v = h("video", { autoplay: true, playsinline: true });
      if (id === "__me") v.muted = true;
      el = h("figure", { class: "dk-tile", role: "listitem", "data-participant": id }, v, h("figcaption"));
      el.video = v;
      tileEls.set(id, el);
    }
    return el;
  }

  function renderTiles() {
    if (!tilesEl) return;
    const want = ["__me", ...[...st.participants.keys()].filter((id) => id !== st.me)];
    for (const [id, el] of tileEls) if (!want.includes(id)) {
      el.remove();
      tileEls.delete(id);
    }
    for (const id of want) {
      const el = tile(id);
      const ms = id === "__me" ? (st.screen || st.local) : st.tracks.get(id);
      if (el.video.srcObject !== (ms || null)) el.video.srcObject = ms || null;
      const q = id === "__me" ? null : st.participants.get(id);
      const loss = st.quality.get(id);
      const name = id === "__me" ? nameOf(st.me) + t("room.you") : q?.name || id.slice(0, 8);
      const tags = [];
      if ((id !== "__me" && q?.audio_muted) || (id === "__me" && st.muted)) tags.push("· " + t("room.muted"));
      if (q?.hand || (id === "__me" && st.hand)) tags.push("· ✋ " + t("room.handRaised"));
      if (loss != null && loss >= 0.02) tags.push(`· ${t("room.quality")} ${t("room.quality.detail", { loss: Math.round(loss * 100), rtt: "–" }).split(" · ")[0]}`);
      el.classList.toggle("dk-speaking", st.speaking.has(id === "__me" ? st.me : id));
      // A tile without live video says so rather than freezing on the
      // last frame (camera off, audio only on either side).
      const video = id === "__me" ? !!outgoing("video") : !st.audioOnly && !q?.video_muted && !!ms && ms.getVideoTracks().length > 0;
      if (!video) tags.push("· " + (st.audioOnly && id !== "__me" ? t("room.ctl.audioOnly") : t("room.camOff")));
      el.classList.toggle("dk-novideo", !video);
      el.querySelector("figcaption").textContent = [name, ...tags].join(" ");
      el.setAttribute("aria-label", [name, ...tags].join(" "));
      if (el.parentNode !== tilesEl) tilesEl.append(el);
    }
  }

  function renderQuality() {
    if (!qualityEl) return;
    const s = st.stats;
    qualityEl.dataset.level = s.level;
    qualityEl.textContent = `${t("room.quality")}: ${t("room.quality." + s.level)}` +
      (s.loss != null ? " · " + t("room.quality.detail", { loss: (s.loss * 100).toFixed(1), rtt: s.rtt ?? "–" }) : "");
  }

  function addChat(p) {
    if (!chatLog) return;
    // Times in the hospital's zone (all Chinese hospitals keep Beijing time).
    const at = p.at ? new Date(p.at).toLocaleTimeString(opts.lang || "zh-CN", { hour: "2-digit", minute: "2-digit", timeZone: opts.timeZone || "Asia/Shanghai" }) : "";
    chatLog.append(h("li", {}, h("span", { class: "dk-muted", text: at + " " }), h("strong", { text: (p.name || nameOf(p.from)) + "：" }), document.createTextNode(p.text)));
    chatLog.scrollTop = chatLog.scrollHeight;
  }

  function teardown() {
    clearInterval(st.statsTimer);
    clearInterval(reconnectTick);
    closePeer();
    st.local?.getTracks().forEach((tr) => tr.stop());
    st.screen?.getTracks().forEach((tr) => tr.stop());
    viewer?.destroy();
    viewer = null;
    st.phase = "ended";
  }

  const onOffline = () => st.sock?.drop();
  window.addEventListener("offline", onOffline);

  if (opts.skipCheck) {
    // Tests: straight in with the default devices.
    openDevices().then(join);
  } else {
    showCheck();
  }

  return {
    get state() {
      return st;
    },
    get viewer() {
      return viewer;
    },
    peerConnection: () => st.pc,
    measure: sampleStats,
    join,
    dropConnection: () => st.sock?.drop(),
    destroy() {
      window.removeEventListener("offline", onOffline);
      if (st.sock && !st.sock.closed) st.sock.leave();
      teardown();
      root.replaceChildren();
    },
  };
}
