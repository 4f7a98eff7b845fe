// The setup page: draws on the people-free view in pixels of the camera's frames; the
// server validates each edit with the device's own config parser and saves it.
"use strict";

const $ = (id) => document.getElementById(id);
const KIND_COLOURS = { shelf: "#e67e22", checkout: "#27ae60", queue: "#2980b9",
  staff: "#8e44ad", entrance: "#c0392b", area: "#16a085" };
let frame = null;          // [width, height] of the camera's frames
let drawing = null;        // {lines, zones, roi, motion_mask, floor}
let pending = [];          // corners of the shape being drawn
let plateLoaded = false;
let expected = {};         // walk test: expected counts per line, kept across refreshes
let dragging = null;       // the corner being moved: {set}
let dragged = false;       // a drag just ended: the click that follows adds no point

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json" } };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    return { ok: false, error: "the setup server does not answer (closed, or the ssh tunnel dropped)" };
  }
  const type = response.headers.get("Content-Type") || "";
  const value = type.startsWith("application/json") ? await response.json()
    : { ok: false, error: (await response.text()).trim() };
  if (!response.ok && value.ok === undefined) value.ok = false;
  return value;
}

function say(id, text, good) {
  const el = $(id);
  el.textContent = text;
  el.className = "status " + (good === undefined ? "" : good ? "ok" : "error");
}

function tool() { return document.querySelector("input[name=tool]:checked").value; }

function uniqueName(base, taken) {
  for (let i = 1; ; i++) if (!taken.includes(base + i)) return base + i;
}

function toFrame(event) {
  const box = $("canvas").getBoundingClientRect();
  // Whole pixels of the frame: finer than an installer can aim, and exact in the YAML.
  return [Math.round((event.clientX - box.left) * frame[0] / box.width),
          Math.round((event.clientY - box.top) * frame[1] / box.height)];
}

function defaultInside(a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1], length = Math.hypot(dx, dy) || 1;
  const reach = Math.max(10, 0.2 * length);
  return [Math.round((a[0] + b[0]) / 2 + dy / length * reach),
          Math.round((a[1] + b[1]) / 2 - dx / length * reach)];
}

// Every corner on the view, each with a way to move it.
function corners() {
  const out = [];
  const add = (list, i) => out.push({ p: list[i], set: (v) => { list[i] = v; } });
  for (const line of drawing.lines) {
    line.points.forEach((_p, i) => add(line.points, i));
    if (line.in_side_point) out.push({ p: line.in_side_point, set: (v) => { line.in_side_point = v; } });
  }
  for (const zone of drawing.zones) zone.points.forEach((_p, i) => add(zone.points, i));
  if (drawing.roi) drawing.roi.forEach((_p, i) => add(drawing.roi, i));
  for (const mask of drawing.motion_mask) mask.forEach((_p, i) => add(mask, i));
  if (drawing.floor) drawing.floor.points.forEach((_p, i) => add(drawing.floor.points, i));
  return out;
}

function onMouseDown(event) {
  if (!frame || pending.length) return;
  const p = toFrame(event), reach = 0.02 * frame[0];
  const near = corners().filter((c) => Math.hypot(c.p[0] - p[0], c.p[1] - p[1]) < reach);
  if (near.length) { dragging = near[0]; event.preventDefault(); }
}

function onMouseMove(event) {
  if (!dragging) return;
  dragging.set(toFrame(event));
  dragged = true;
  render();
}

function onMouseUp() {
  if (!dragging) return;
  dragging = null;
  if (dragged) {
    changed();
    setTimeout(() => { dragged = false; }, 0);  // after the click this mouseup makes
  }
}

function onClick(event) {
  if (!frame) return;
  if (dragged) return;
  const p = toFrame(event), t = tool();
  if (t === "line") {
    pending.push(p);
    if (pending.length === 2) {
      const [a, b] = pending;
      drawing.lines.push({ name: uniqueName("door", drawing.lines.map((l) => l.name)),
        points: [a, b], in_side_point: defaultInside(a, b) });
      pending = [];
      changed();
    }
  } else if (pending.length >= 3 && t !== "floor" &&
             Math.hypot(p[0] - pending[0][0], p[1] - pending[0][1]) < 0.02 * frame[0]) {
    finish();
  } else {
    pending.push(p);
    if (t === "floor" && pending.length === 4) finish();
  }
  render();
}

function finish() {
  const t = tool(), points = pending;
  pending = [];
  if (t === "line" || points.length < 3) { render(); return; }
  if (t === "zone") {
    const kind = $("zone-kind").value;
    drawing.zones.push({ name: uniqueName(kind, drawing.zones.map((z) => z.name)), kind, points });
  } else if (t === "roi") {
    drawing.roi = points;
  } else if (t === "motion_mask") {
    drawing.motion_mask.push(points);
  } else if (t === "floor") {
    if (points.length !== 4) { say("validation", "the floor rectangle needs 4 corners", false); return; }
    drawing.floor = { points, width_m: +$("floor-width").value, depth_m: +$("floor-depth").value };
  }
  changed();
}

function polygon(ctx, points, stroke, fill, dashed) {
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.closePath();
  ctx.setLineDash(dashed ? [8, 6] : []);
  if (fill) { ctx.fillStyle = fill; ctx.fill(); }
  ctx.strokeStyle = stroke;
  ctx.stroke();
  ctx.setLineDash([]);
}

function render() {
  const canvas = $("canvas"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!drawing) return;
  const unit = Math.max(frame[0], frame[1]) / 400;  // strokes and text scale with the frame
  ctx.lineWidth = 2 * unit;
  ctx.font = `${12 * unit}px sans-serif`;
  if (drawing.roi) polygon(ctx, drawing.roi, "#fff", null, true);
  for (const mask of drawing.motion_mask) polygon(ctx, mask, "#555", "rgba(0,0,0,.35)");
  for (const zone of drawing.zones) {
    const colour = KIND_COLOURS[zone.kind] || "#16a085";
    polygon(ctx, zone.points, colour, colour + "44");
    ctx.fillStyle = colour;
    ctx.fillText(`${zone.name} (${zone.kind})`, zone.points[0][0] + 3 * unit, zone.points[0][1] + 12 * unit);
  }
  for (const line of drawing.lines) {
    const [a, b] = line.points, mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    ctx.strokeStyle = ctx.fillStyle = "#ff0";
    ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke();
    if (line.in_side_point) arrow(ctx, mid, line.in_side_point, unit);
    // The name beside the line's right end, kept inside the view.
    const end = a[0] > b[0] ? a : b, width = ctx.measureText(line.name).width;
    ctx.fillText(line.name, Math.min(end[0] + 4 * unit, frame[0] - width - 2 * unit), end[1] - 4 * unit);
  }
  if (drawing.floor) {
    polygon(ctx, drawing.floor.points, "#0ff", null, true);
    drawing.floor.points.forEach(([x, y], i) => {
      ctx.fillStyle = "#0ff"; ctx.fillText(String(i + 1), x + 3 * unit, y - 3 * unit);
    });
  }
  ctx.fillStyle = "#f0f";
  for (const [x, y] of pending) { ctx.beginPath(); ctx.arc(x, y, 3 * unit, 0, 7); ctx.fill(); }
}

function arrow(ctx, from, to, unit) {
  const angle = Math.atan2(to[1] - from[1], to[0] - from[0]), head = 8 * unit;
  ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
  ctx.beginPath(); ctx.moveTo(...to);
  ctx.lineTo(to[0] - head * Math.cos(angle - 0.4), to[1] - head * Math.sin(angle - 0.4));
  ctx.lineTo(to[0] - head * Math.cos(angle + 0.4), to[1] - head * Math.sin(angle + 0.4));
  ctx.closePath(); ctx.fill();
  ctx.fillText("in", to[0] + 3 * unit, to[1]);
}

function button(text, action) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = text; b.onclick = action;
  return b;
}

function nameInput(item) {
  const input = document.createElement("input");
  input.type = "text"; input.value = item.name;
  input.onchange = () => { item.name = input.value.trim(); changed(); };
  return input;
}

function listItems() {
  const list = $("items");
  list.replaceChildren();
  const add = (...parts) => { const li = document.createElement("li"); li.append(...parts); list.append(li); };
  drawing.lines.forEach((line, i) => add("line ", nameInput(line),
    button("flip in side", () => {
      const [a, b] = line.points, mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      const p = line.in_side_point || defaultInside(a, b);
      line.in_side_point = [2 * mid[0] - p[0], 2 * mid[1] - p[1]];
      changed();
    }),
    button("delete", () => { drawing.lines.splice(i, 1); changed(); })));
  drawing.zones.forEach((zone, i) => {
    const kind = $("zone-kind").cloneNode(true);
    kind.removeAttribute("id"); kind.value = zone.kind;
    kind.onchange = () => { zone.kind = kind.value; changed(); };
    add("zone ", nameInput(zone), kind, button("delete", () => { drawing.zones.splice(i, 1); changed(); }));
  });
  if (drawing.roi) add("detection area (roi) ", button("delete", () => { drawing.roi = null; changed(); }));
  drawing.motion_mask.forEach((_m, i) => add(`motion mask ${i + 1} `,
    button("delete", () => { drawing.motion_mask.splice(i, 1); changed(); })));
  $("floor-size").hidden = !drawing.floor;
  if (drawing.floor) add("floor rectangle ", button("delete", () => { drawing.floor = null; changed(); }));
}

async function changed() {
  listItems();
  render();
  const result = await api("/api/validate", drawing);
  say("validation", result.ok ? "OK: the config parser accepts this" : result.error, result.ok);
  showList("suggestions", result.suggestions || []);
}

function showList(id, texts) {
  $(id).replaceChildren(...texts.map((text) => {
    const li = document.createElement("li"); li.textContent = text; return li;
  }));
}

function showCheck(check) {
  if (!check) return;
  showList("check-suggestions", check.suggestions);
  say("check-status", `${check.state}${check.message ? ": " + check.message : ""} - ` +
      `${check.frames} frames, ${check.fps} fps, ${check.seconds} s`, check.state !== "error");
  const body = $("check-lines").tBodies[0];
  for (const [name, counts] of Object.entries(check.lines)) {
    let row = document.getElementById(`line-${name}`);
    if (!row) {
      row = body.insertRow(); row.id = `line-${name}`;
      row.insertCell().textContent = name;
      for (const d of ["in", "out"]) row.insertCell().id = `line-${name}-${d}`;
      for (const d of ["in", "out"]) {
        const input = document.createElement("input");
        input.type = "number"; input.min = "0"; input.id = `expect-${name}-${d}`;
        input.value = (expected[name] || {})[d] ?? "";  // blank: a line not walked, not judged
        input.placeholder = "-";
        input.onchange = () => { (expected[name] ??= {})[d] = input.value; };
        row.insertCell().append(input);
      }
    }
    $(`line-${name}-in`).textContent = counts.in;
    $(`line-${name}-out`).textContent = counts.out;
  }
  const zones = $("check-zones").tBodies[0];
  zones.replaceChildren();
  for (const [name, z] of Object.entries(check.zones)) {
    const row = zones.insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = z.now;
    row.insertCell().textContent = z.max;
  }
}

async function poll() {
  const state = await api("/api/state");
  if (state.ok === false) { say("plate-status", state.error, false); return false; }
  $("camera").textContent = state.camera;
  $("config").textContent = state.config;
  const plate = state.plate;
  say("plate-status", plate.state === "collecting"
    ? `Making a people-free view: ${plate.samples} of ${plate.needed} views`
    : plate.message, plate.state !== "error");
  if (state.frame_size && !frame) {
    frame = state.frame_size;
    const canvas = $("canvas");
    [canvas.width, canvas.height] = frame;
    $("stage").style.aspectRatio = `${frame[0]} / ${frame[1]}`;
    drawing = state.drawing;
    changed();  // the camera's current geometry, validated and with its suggestions
  }
  if (plate.state === "ready" && !plateLoaded) {
    plateLoaded = true;
    $("plate").src = "/api/plate.png";
    $("plate").hidden = false;
  }
  showCheck(state.check);
  return true;
}

function setup() {
  for (const kind of ["area", "shelf", "checkout", "queue", "staff", "entrance"]) {
    const option = document.createElement("option");
    option.value = option.textContent = kind;
    $("zone-kind").append(option);
  }
  $("canvas").addEventListener("click", onClick);
  $("canvas").addEventListener("mousedown", onMouseDown);
  $("canvas").addEventListener("mousemove", onMouseMove);
  window.addEventListener("mouseup", onMouseUp);
  $("finish").onclick = finish;
  $("undo").onclick = () => { pending.pop(); render(); };
  for (const id of ["floor-width", "floor-depth"]) {
    $(id).onchange = () => {
      if (!drawing.floor) return;
      drawing.floor.width_m = +$("floor-width").value;
      drawing.floor.depth_m = +$("floor-depth").value;
      changed();
    };
  }
  document.querySelectorAll("input[name=tool]").forEach((r) => (r.onchange = () => { pending = []; render(); }));
  $("save").onclick = async () => {
    const result = await api("/api/save", drawing);
    say("saved", result.ok ? result.message : result.error, result.ok);
  };
  $("check-start").onclick = async () => {
    const result = await api("/api/check/start", { drawing });
    if (!result.ok) say("check-status", result.error, false);
  };
  $("check-stop").onclick = () => api("/api/check/stop", {});
  $("check-record").onclick = async () => {
    const counts = {};
    document.querySelectorAll("#check-lines tbody tr").forEach((row) => {
      const name = row.id.slice(5);
      const given = ["in", "out"].map((d) => $(`expect-${name}-${d}`).value);
      if (given.some((v) => v !== "")) counts[name] = { in: +given[0], out: +given[1] };
    });
    const result = await api("/api/check/record", { expected: counts });
    say("recorded", result.ok ? `${result.report.result}: report ${result.path}` : result.error,
        result.ok && result.report.result === "pass");
  };
  $("close").onclick = async () => {
    await api("/api/close", {});
    clearInterval(timer);
    say("plate-status", "Setup closed. You can close this tab.", true);
  };
  poll();
  const timer = setInterval(async () => { if (!(await poll())) clearInterval(timer); }, 1000);
}

setup();
