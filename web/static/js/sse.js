// Live streams (Server-Sent Events). The server sends "ready" once it has
// subscribed; only then is a fresh read of the state complete, so onReady
// re-reads (on the first connection and after every reconnect). EventSource
// reconnects by itself after a dropped connection; when it gives up (the
// server answered an error, e.g. after a restart), we open a new one with
// a growing, jittered delay. The server draws each stream's own
// reconnection delay (its "retry:" field) for the same reason.

export function live(url, { onReady, on = {}, onState = () => {} }) {
  let es = null;
  let closed = false;
  let delay = 1000;
  let timer = null;

  function open() {
    if (closed) return;
    es = new EventSource(url, { withCredentials: true });
    onState("connecting");
    es.addEventListener("ready", () => {
      delay = 1000;
      onState("live");
      if (onReady) onReady();
    });
    for (const [name, fn] of Object.entries(on)) {
      es.addEventListener(name, (ev) => {
        let data = null;
        try { data = JSON.parse(ev.data); } catch { /* a notice without a body */ }
        fn(data, name);
      });
    }
    es.onerror = () => {
      if (closed) return;
      onState("reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        es = null;
        // Jittered, so that screens cut off together do not all come back
        // in the same instant.
        timer = setTimeout(open, delay * (0.5 + Math.random()));
        delay = Math.min(delay * 2, 30000);
      }
    };
  }
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
      onState("off");
    },
  };
}
