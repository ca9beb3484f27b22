// The room's signalling connection (protocol: signaling/doc.go). It joins
// with a join token, numbers every message it sends, follows a redirect to
// the instance hosting the room, and after a drop resumes its place with the
// resume secret while the server's window lasts; past the window, or when
// the token is refused, it asks its owner for a fresh ticket and joins again.
//
// Events (EventTarget, detail on each):
//   "message" {msg}                  every server message
//   "state"   {state, left?, code?}  connecting | open | reconnecting | rejoining | closed
const SUBPROTOCOL = "duikou.v1";

// Close codes after which reconnecting is pointless or wrong.
const FINAL = new Set([4403, 4409, 4400, 1000]);

export class RoomSocket extends EventTarget {
  // ticket: the join answer {token, ws_url, room}; renew(): a fresh ticket.
  constructor(ticket, renew) {
    super();
    this.ticket = ticket;
    this.renew = renew;
    this.url = ticket.ws_url;
    this.seq = 0;
    this.participant = "";
    this.secret = "";
    this.resumeWithin = 20;
    this.droppedAt = 0;
    this.ws = null;
    this.closed = false;
    this.timer = 0;
    this.attempt = 0;
  }

  connect() {
    this._open(false);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _open(resume) {
    if (this.closed) return;
    this._emit("state", { state: resume ? "reconnecting" : "connecting", left: this._left() });
    const ws = new WebSocket(this.url, [SUBPROTOCOL]);
    this.ws = ws;
    ws.onopen = () => {
      // Each connection numbers its own messages from 1.
      this.seq = 0;
      if (resume) {
        this.send("resume", { room: this.ticket.room, participant: this.participant, secret: this.secret });
      } else {
        this.send("join", { room: this.ticket.room, token: this.ticket.token });
      }
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "welcome") {
        this.participant = msg.payload.participant;
        this.secret = msg.payload.secret;
        this.resumeWithin = msg.payload.resume_within_s || 20;
        this.droppedAt = 0;
        this.attempt = 0;
        this._emit("state", { state: "open", resumed: !!msg.payload.resumed });
      } else if (msg.type === "lobby") {
        this.droppedAt = 0;
        this.attempt = 0;
        this._emit("state", { state: "open", lobby: true });
      } else if (msg.type === "redirect") {
        this.url = msg.payload.url;
      }
      this._emit("message", { msg });
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._closed(ev.code);
    };
  }

  _left() {
    if (!this.droppedAt) return this.resumeWithin;
    return Math.max(0, Math.round(this.resumeWithin - (Date.now() - this.droppedAt) / 1000));
  }

  async _closed(code) {
    if (this.closed) return;
    if (FINAL.has(code)) {
      this.closed = true;
      this._emit("state", { state: "closed", code });
      return;
    }
    if (code === 4307) {
      // Redirected: join at the instance that hosts the room.
      this._open(false);
      return;
    }
    if (!this.droppedAt) this.droppedAt = Date.now();
    const canResume = this.secret && code !== 4410 && code !== 4401 && this._left() > 0;
    if (canResume) {
      const delay = Math.min(4000, 250 * 2 ** this.attempt++);
      this._emit("state", { state: "reconnecting", left: this._left(), code });
      this.timer = setTimeout(() => this._open(true), delay);
      return;
    }
    // Too late to resume (or never joined): a fresh ticket, a fresh join.
    this._emit("state", { state: "rejoining", code });
    this.secret = "";
    this.participant = "";
    this.droppedAt = 0;
    const delay = Math.min(8000, 500 * 2 ** this.attempt++);
    this.timer = setTimeout(async () => {
      try {
        this.ticket = await this.renew();
        this.url = this.ticket.ws_url;
        this._open(false);
      } catch (err) {
        this._emit("state", { state: "rejoining", error: String(err && err.message || err) });
        this._closed(0);
      }
    }, delay);
  }

  send(type, payload) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return 0;
    const seq = ++this.seq;
    const m = { type, seq };
    if (payload !== undefined) m.payload = payload;
    ws.send(JSON.stringify(m));
    return seq;
  }

  // drop closes the socket as a network failure would (tests, and the
  // "offline" event): the socket then resumes.
  drop() {
    if (this.ws) this.ws.close(4000, "drop");
  }

  leave() {
    this.send("leave");
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "left");
    this._emit("state", { state: "closed", code: 1000 });
  }
}
