// The shared imaging viewer inside the room. It lists the session's images
// (DICOM files and ordinary pictures), renders DICOM with dwv (vendored in
// /static/vendor/room/), and keeps one view state — image, slice, window,
// zoom, pan, annotations (signaling.ViewState) — that the presenter's
// viewer sends whole on every change and followers apply when its room
// sequence (vseq) is newer than the last they applied.
//
// Zoom, pan and the annotation overlay are the viewer's own, on top of the
// rendered image, in image pixel coordinates: they look the same on every
// screen size and the same for DICOM and pictures. Window and level go to
// dwv for DICOM; a picture gets an equivalent linear SVG filter.
import * as dwv from "../vendor/room/dwv.bundle.js";
import { translator } from "./messages.js";

const SVGNS = "http://www.w3.org/2000/svg";
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
const s = (tag, attrs = {}) => {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
};

let instances = 0;
const TOOLS = ["wl", "pan", "zoom", "arrow", "ellipse", "length", "text"];

export function mountImaging(root, opts) {
  const t = translator(opts.lang || "zh-CN");
  const log = opts.log || (() => {});
  const uid = `dk-img-${++instances}`;
  const blank = () => ({ image: "", slice: 0, window_center: 128, window_width: 256, zoom: 1, pan_x: 0, pan_y: 0, annotations: [] });
  let view = blank();
  let lastVseq = 0;
  let presenter = "", presenting = false, presenterName = "";
  let images = [];
  let tool = "wl";
  let loaded = null; // {id, kind: "dicom"|"image", cols, rows, slices, app?, vc?, img?, spacing?}
  let loading = null;
  let destroyed = false;

  // ---- the screen ----
  const statusLine = h("p", { class: "dk-img-role", role: "status" });
  const takeBtn = h("button", { type: "button", hidden: true, onclick: () => opts.takePresenter?.(), text: t("img.takePresenter") });
  const list = h("ul", { class: "dk-img-list", "aria-label": t("img.list") });
  const toolBtns = TOOLS.map((k) => h("button", { type: "button", "data-tool": k, "aria-pressed": String(k === tool), onclick: () => setTool(k), text: t("img.tool." + k) }));
  const textInput = h("input", { id: uid + "-text", type: "text", maxlength: 200, placeholder: t("img.textPrompt") });
  const sliceInput = h("input", { id: uid + "-slice", type: "range", min: 1, max: 1, value: 1 });
  const wwInput = h("input", { id: uid + "-ww", type: "number", step: 1, min: 1 });
  const wcInput = h("input", { id: uid + "-wc", type: "number", step: 1 });
  const controls = h("div", { class: "dk-img-tools", role: "toolbar", "aria-label": t("img.tool") },
    ...toolBtns, h("label", { for: uid + "-text", class: "dk-sr", text: t("img.textPrompt") }), textInput,
    h("button", { type: "button", onclick: () => change({ annotations: [] }), text: t("img.clear") }),
    h("button", { type: "button", onclick: () => change({ zoom: 1, pan_x: 0, pan_y: 0, ...defaultWL() }), text: t("img.reset") }));
  const fields = h("div", { class: "dk-img-fields" },
    h("label", { for: uid + "-slice", text: t("img.slice") }), sliceInput,
    h("label", { for: uid + "-ww", text: t("img.window") }), wwInput,
    h("label", { for: uid + "-wc", text: t("img.level") }), wcInput);
  const dwvDiv = h("div", { id: uid + "-dwv", class: "dk-img-dwv" });
  const picture = h("img", { class: "dk-img-pic", alt: "", hidden: true, draggable: "false" });
  const svg = s("svg", { class: "dk-img-overlay", preserveAspectRatio: "xMidYMid meet", viewBox: "0 0 1 1" });
  const filterId = uid + "-wl";
  const filterSvg = s("svg", { width: 0, height: 0, style: "position:absolute" });
  const filter = s("filter", { id: filterId, "color-interpolation-filters": "sRGB" });
  const fct = s("feComponentTransfer");
  const funcs = ["feFuncR", "feFuncG", "feFuncB"].map((n) => s(n, { type: "linear", slope: 1, intercept: 0 }));
  fct.append(...funcs);
  filter.append(fct);
  filterSvg.append(filter);
  const xf = h("div", { class: "dk-img-xf" }, dwvDiv, picture, svg);
  const stage = h("div", { class: "dk-img-stage", tabindex: 0, role: "application", "aria-roledescription": t("img.title"), "aria-label": t("img.help") }, xf, filterSvg);
  const info = h("p", { class: "dk-img-status", "data-testid": "imaging-status" });
  const note = h("p", { class: "dk-img-note", role: "status" });
  root.replaceChildren(
    h("div", { class: "dk-img-head" }, h("h3", { text: t("img.title") }), statusLine, takeBtn),
    list, controls, fields, stage, info, note);

  // ---- state ----
  function defaultWL() {
    if (loaded?.kind === "dicom" && loaded.wl0) return { window_center: loaded.wl0.center, window_width: loaded.wl0.width };
    return { window_center: 128, window_width: 256 };
  }

  let sendTimer = 0, sendDue = 0;
  function change(patch) {
    if (!presenting && presenter) return; // followers do not steer
    view = { ...view, ...patch };
    clamp();
    draw();
    if (presenting) {
      // At most one message every 50 ms, always ending on the latest view.
      const now = Date.now();
      clearTimeout(sendTimer);
      const go = () => {
        sendDue = Date.now() + 50;
        opts.send?.(wire());
      };
      if (now >= sendDue) go();
      else sendTimer = setTimeout(go, sendDue - now);
    }
  }

  function wire() {
    const v = { ...view, annotations: view.annotations.map((a) => ({ ...a })) };
    if (!v.image) delete v.image;
    if (!v.annotations.length) delete v.annotations;
    return v;
  }

  function clamp() {
    const n = loaded?.slices || 1;
    view.slice = Math.max(0, Math.min(n - 1, Math.round(view.slice)));
    view.window_width = Math.max(1, view.window_width);
    view.zoom = Math.max(0.1, Math.min(32, view.zoom));
  }

  // apply takes a viewport event from the presenter (signaling.ViewportEvent).
  function apply(ev) {
    if (!ev || ev.vseq <= lastVseq) return;
    lastVseq = ev.vseq;
    if (presenting) return; // our own view, relayed to others
    view = { ...blank(), ...ev.state, annotations: ev.state.annotations || [] };
    if (view.image && view.image !== loaded?.id) load(view.image);
    else draw();
  }

  function setPresenter(id, isMe, name) {
    presenter = id;
    presenting = isMe;
    presenterName = name || "";
    statusLine.textContent = isMe ? t("img.presenting") : id ? t("img.following", { name: presenterName }) : t("img.noPresenter");
    takeBtn.hidden = !(opts.canPresent && !isMe && !id);
    root.dataset.role = isMe ? "presenter" : id ? "follower" : "free";
    for (const el of [...toolBtns, textInput, sliceInput, wwInput, wcInput, ...controls.querySelectorAll("button")]) el.disabled = !!id && !isMe;
    renderList();
    if (isMe) {
      // The new presenter starts from what everyone sees now.
      if (!view.image && images.length) select(images[0].id);
      else if (view.image) change({});
    }
  }

  // ---- the session's images ----
  async function listImages() {
    try {
      const d = await opts.api.get(`/api/v1/sessions/${encodeURIComponent(opts.sessionId)}`);
      images = (d.attachments || []).filter((a) => a.kind === "dicom" || a.content_type === "application/dicom" || /^image\//.test(a.content_type));
    } catch (err) {
      note.textContent = t("img.loadFailed", { err: err.message || err });
      images = [];
    }
    renderList();
    root.dataset.empty = String(!images.length);
    if (!images.length) {
      note.textContent = t("img.none");
      return;
    }
    if (!view.image && (presenting || !presenter)) select(images[0].id);
  }

  function renderList() {
    list.replaceChildren(...images.map((a) => h("li", {},
      h("button", { type: "button", "aria-pressed": String(a.id === view.image), disabled: !!presenter && !presenting, onclick: () => select(a.id) },
        (a.dicom ? `${a.dicom.modality || "DICOM"} · ` : "") + a.name))));
  }

  function select(id) {
    if (presenter && !presenting) return;
    view = { ...blank(), image: id };
    load(id, true);
  }

  // ---- loading ----
  async function load(id, announce) {
    const meta = images.find((a) => a.id === id) || { id, content_type: "" };
    const token = {};
    loading = token;
    note.textContent = t("img.loading");
    root.dataset.loaded = "";
    try {
      const res = await opts.blob(`/api/v1/attachments/${encodeURIComponent(id)}`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const type = (res.headers.get("Content-Type") || meta.content_type || "").split(";")[0];
      const buf = await res.arrayBuffer();
      if (loading !== token || destroyed) return;
      unload();
      if (type === "application/dicom" || meta.kind === "dicom") loaded = await loadDicom(id, buf);
      else loaded = await loadPicture(id, buf, type);
      if (loading !== token || destroyed) return;
      note.textContent = "";
      svg.setAttribute("viewBox", `0 0 ${loaded.cols} ${loaded.rows}`);
      sliceInput.max = String(loaded.slices);
      if (announce) {
        // A freshly chosen image starts at its first slice and its own
        // window, and the presenter tells everyone.
        view.slice = 0;
        Object.assign(view, defaultWL());
        change({});
      }
      draw();
      renderList();
      root.dataset.loaded = id;
    } catch (err) {
      log("imaging", String(err && err.stack || err));
      if (loading === token) note.textContent = t("img.loadFailed", { err: err.message || err });
    }
  }

  function unload() {
    if (loaded?.app) loaded.app.reset();
    if (loaded?.url) URL.revokeObjectURL(loaded.url);
    dwvDiv.replaceChildren();
    picture.hidden = true;
    dwvDiv.hidden = true;
    loaded = null;
  }

  function loadDicom(id, buf) {
    return new Promise((resolve, reject) => {
      dwvDiv.hidden = false;
      const app = new dwv.App();
      const options = new dwv.AppOptions({ "*": [new dwv.ViewConfig(dwvDiv.id)] });
      app.init(options);
      let failed = false;
      app.addEventListener("error", (e) => {
        failed = true;
        reject(e.error || new Error("DICOM"));
      });
      app.addEventListener("load", (e) => {
        if (failed) return;
        const vc = app.getViewLayersByDataId(e.dataid)[0]?.getViewController();
        if (!vc) return reject(new Error("no view"));
        // Slices are the first dimension past the plane with more than
        // one entry: dwv puts a volume's slices in the third dimension and
        // the frames of a multi-frame file without positions in the fourth.
        const size = vc.getImageSize();
        const vals = size.getValues();
        let dim = vc.getScrollDimIndex();
        for (let d = 2; d < vals.length; d++) if (vals[d] > 1) { dim = d; break; }
        const wl = vc.getWindowLevel();
        const sp = vc.getImageSpacing();
        resolve({ id, kind: "dicom", app, vc, dim, cols: size.get(0), rows: size.get(1), slices: size.get(dim) || 1,
          wl0: { center: Math.round(wl.center), width: Math.round(wl.width) }, spacing: sp ? sp.get(0) : 0 });
      });
      app.loadImageObject([{ name: id + ".dcm", filename: id + ".dcm", data: buf }]);
    });
  }

  function loadPicture(id, buf, type) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(new Blob([buf], { type }));
      picture.onload = () => resolve({ id, kind: "image", url, cols: picture.naturalWidth, rows: picture.naturalHeight, slices: 1 });
      picture.onerror = () => reject(new Error("image"));
      picture.hidden = false;
      picture.src = url;
    });
  }

  // ---- drawing ----
  function fit() {
    const r = stage.getBoundingClientRect();
    if (!loaded || !r.width) return 1;
    return Math.min(r.width / loaded.cols, r.height / loaded.rows);
  }

  function draw() {
    if (!loaded) return;
    clamp();
    if (loaded.kind === "dicom") {
      const idx = loaded.vc.getCurrentIndex().getValues();
      if (idx[loaded.dim] !== view.slice) {
        idx[loaded.dim] = view.slice;
        loaded.vc.setCurrentIndex(new dwv.Index(idx));
      }
      let wl = loaded.vc.getWindowLevel();
      if (wl.center !== view.window_center || wl.width !== view.window_width) {
        loaded.vc.setWindowLevel(new dwv.WindowLevel(view.window_center, view.window_width));
        // dwv keeps the window inside what the data allows: the view (and
        // so what the presenter sends) says what is really shown.
        wl = loaded.vc.getWindowLevel();
        view.window_center = wl.center;
        view.window_width = wl.width;
      }
    } else {
      // out = (v − (c − w/2)) / w on 0–255, as a DICOM window does.
      const slope = 255 / view.window_width;
      const intercept = (view.window_width / 2 - view.window_center) / view.window_width;
      for (const f of funcs) {
        f.setAttribute("slope", slope.toFixed(4));
        f.setAttribute("intercept", intercept.toFixed(4));
      }
      picture.style.filter = `url(#${filterId})`;
    }
    const k = fit() * view.zoom;
    xf.style.transform = `translate(${view.pan_x * k}px, ${view.pan_y * k}px) scale(${view.zoom})`;
    drawAnnotations();
    sliceInput.value = String(view.slice + 1);
    if (document.activeElement !== wwInput) wwInput.value = String(Math.round(view.window_width));
    if (document.activeElement !== wcInput) wcInput.value = String(Math.round(view.window_center));
    info.textContent = t("img.status", { slice: view.slice + 1, slices: loaded.slices, ww: Math.round(view.window_width), wc: Math.round(view.window_center), zoom: view.zoom.toFixed(2) });
    info.dataset.slice = String(view.slice);
    info.dataset.ww = String(view.window_width);
    info.dataset.wc = String(view.window_center);
  }

  function drawAnnotations(extra) {
    const all = extra ? [...view.annotations, extra] : view.annotations;
    const stroke = Math.max(1, (loaded?.cols || 512) / 256);
    const kids = [s("defs")];
    const marker = s("marker", { id: uid + "-head", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
    marker.append(s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#ffd400" }));
    kids[0].append(marker);
    for (const a of all) {
      const [x1, y1, x2, y2] = a.pts;
      const g = s("g", { "data-kind": a.kind, class: "dk-ann" });
      const line = { stroke: "#ffd400", "stroke-width": stroke, fill: "none", "vector-effect": "non-scaling-stroke" };
      if (a.kind === "arrow") g.append(s("line", { x1: x2, y1: y2, x2: x1, y2: y1, ...line, "marker-end": `url(#${uid}-head)` }));
      if (a.kind === "ellipse") g.append(s("ellipse", { cx: (x1 + x2) / 2, cy: (y1 + y2) / 2, rx: Math.abs(x2 - x1) / 2, ry: Math.abs(y2 - y1) / 2, ...line }));
      if (a.kind === "length") g.append(s("line", { x1, y1, x2, y2, ...line }));
      const label = a.kind === "length" ? lengthLabel(a) : a.text;
      if (label) {
        const tx = s("text", { x: a.kind === "text" ? x1 : x2 + 4 * stroke, y: a.kind === "text" ? y1 : y2, fill: "#ffd400", "font-size": 12 * stroke, "paint-order": "stroke", stroke: "#000", "stroke-width": stroke / 2 });
        tx.textContent = label;
        g.append(tx);
      }
      kids.push(g);
    }
    svg.replaceChildren(...kids);
  }

  function lengthLabel(a) {
    const [x1, y1, x2, y2] = a.pts;
    const px = Math.hypot(x2 - x1, y2 - y1);
    const mm = loaded?.spacing ? px * loaded.spacing : 0;
    return (a.text ? a.text + " " : "") + (mm ? `${mm.toFixed(1)} mm` : `${px.toFixed(0)} px`);
  }

  // ---- interaction (the presenter, or anyone when nobody presents) ----
  const steering = () => loaded && (presenting || !presenter);

  function setTool(k) {
    tool = k;
    for (const b of toolBtns) b.setAttribute("aria-pressed", String(b.dataset.tool === k));
  }

  function imagePoint(ev) {
    const m = svg.getScreenCTM();
    if (!m) return [0, 0];
    const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse());
    return [Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10];
  }

  let drag = null;
  stage.addEventListener("pointerdown", (ev) => {
    if (!steering() || ev.button !== 0) return;
    stage.focus();
    stage.setPointerCapture(ev.pointerId);
    drag = { x: ev.clientX, y: ev.clientY, start: { ...view }, p0: imagePoint(ev) };
    if (tool === "text") {
      const text = textInput.value.trim() || window.prompt(t("img.textPrompt")) || "";
      drag = null;
      if (text) change({ annotations: [...view.annotations, { id: newId(), kind: "text", pts: imagePoint(ev), text }].slice(-100) });
    }
    ev.preventDefault();
  });
  stage.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    const k = fit() * drag.start.zoom;
    if (tool === "wl") {
      const step = Math.max(1, drag.start.window_width / 200);
      change({ window_width: drag.start.window_width + dx * step, window_center: drag.start.window_center + dy * step });
    } else if (tool === "pan") {
      change({ pan_x: drag.start.pan_x + dx / k, pan_y: drag.start.pan_y + dy / k });
    } else if (tool === "zoom") {
      change({ zoom: drag.start.zoom * Math.exp(-dy / 150) });
    } else {
      drawAnnotations({ id: "draft", kind: tool, pts: [...drag.p0, ...imagePoint(ev)] });
    }
  });
  const endDrag = (ev) => {
    if (!drag) return;
    if (["arrow", "ellipse", "length"].includes(tool)) {
      const pts = [...drag.p0, ...imagePoint(ev)];
      if (Math.hypot(pts[2] - pts[0], pts[3] - pts[1]) > 2) {
        change({ annotations: [...view.annotations, { id: newId(), kind: tool, pts }].slice(-100) });
      } else drawAnnotations();
    }
    drag = null;
  };
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);
  stage.addEventListener("wheel", (ev) => {
    if (!steering()) return;
    ev.preventDefault();
    change({ slice: view.slice + (ev.deltaY > 0 ? 1 : -1) });
  }, { passive: false });
  stage.addEventListener("keydown", (ev) => {
    if (!steering()) return;
    const k = ev.key;
    const patch =
      k === "ArrowDown" || k === "PageDown" ? { slice: view.slice + 1 } :
      k === "ArrowUp" || k === "PageUp" ? { slice: view.slice - 1 } :
      k === "Home" ? { slice: 0 } :
      k === "End" ? { slice: (loaded?.slices || 1) - 1 } :
      k === "+" || k === "=" ? { zoom: view.zoom * 1.25 } :
      k === "-" ? { zoom: view.zoom / 1.25 } :
      k === "0" ? { zoom: 1, pan_x: 0, pan_y: 0 } : null;
    if (patch) {
      ev.preventDefault();
      change(patch);
    }
  });
  sliceInput.addEventListener("input", () => change({ slice: Number(sliceInput.value) - 1 }));
  wwInput.addEventListener("change", () => Number.isFinite(+wwInput.value) && change({ window_width: +wwInput.value }));
  wcInput.addEventListener("change", () => Number.isFinite(+wcInput.value) && change({ window_center: +wcInput.value }));
  const onResize = () => {
    loaded?.app?.fitToContainer();
    draw();
  };
  window.addEventListener("resize", onResize);

  function newId() {
    return Math.random().toString(36).slice(2, 10);
  }

  listImages();

  return {
    apply,
    setPresenter,
    state: () => wire(),
    // rendered reads back what is on screen: the DICOM library's own slice
    // and window, not the state this module asked for.
    rendered() {
      if (!loaded) return null;
      const out = { image: loaded.id, kind: loaded.kind, slices: loaded.slices, zoom: view.zoom, pan_x: view.pan_x, pan_y: view.pan_y, annotations: view.annotations.length, vseq: lastVseq };
      if (loaded.kind === "dicom") {
        const wl = loaded.vc.getWindowLevel();
        out.slice = loaded.vc.getCurrentIndex().getValues()[loaded.dim];
        out.window_center = wl.center;
        out.window_width = wl.width;
      } else {
        out.slice = 0;
        out.window_width = 255 / Number(funcs[0].getAttribute("slope"));
        out.window_center = out.window_width / 2 - Number(funcs[0].getAttribute("intercept")) * out.window_width;
      }
      return out;
    },
    destroy() {
      destroyed = true;
      window.removeEventListener("resize", onResize);
      unload();
      root.replaceChildren();
    },
  };
}
