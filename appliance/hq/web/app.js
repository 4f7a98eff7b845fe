// The dashboard: draws /api/report, which is `shopper-hq report --json` for the chosen
// query. Every figure shown carries data-key (its path in that JSON) and data-value.
"use strict";
const $ = (id) => document.getElementById(id);
let cameras = [];  // /api/cameras
let report = null;  // /api/report

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(svgNS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// A figure of the report: its text, and where it comes from for the tests.
function fig(key, value, text, lowerBound) {
  const shown = text !== undefined ? text : (value === null ? "-" : String(value));
  const node = el("span", {"data-key": key.join("|"), "data-value": JSON.stringify(value)},
                  (lowerBound ? "≥ " : "") + shown);
  if (lowerBound) node.className = "lower";
  return node;
}
const pct = (v) => (v === null || v === undefined ? "-" : (100 * v).toFixed(1) + "%");
const secs = (dwell, name) => dwell[name] === null ? "-" :
  dwell[name] + (dwell.at_least.includes(name) ? "+ s" : " s");

function query() {
  const q = new URLSearchParams();
  for (const name of ["store", "camera", "from", "to", "tz"]) {
    if ($(name).value) q.set(name, $(name).value);
  }
  return q;
}

async function getJSON(url) {
  const response = await fetch(url);
  if (response.status === 401) { location.href = "/login"; throw new Error("log in"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error);
  return body;
}

function fillCameras() {
  const store = $("store").value, chosen = $("camera").value;
  $("camera").replaceChildren(el("option", {value: ""}, "all cameras"),
    ...cameras.filter((c) => !store || c.store_id === store)
      .map((c) => el("option", {value: c.camera_id}, store ? c.camera_id :
                     `${c.camera_id} (${c.store_id})`)));
  $("camera").value = [...$("camera").options].some((o) => o.value === chosen) ? chosen : "";
}

async function show() {
  $("error").hidden = true;
  try {
    report = await getJSON("/api/report?" + query());
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
    return;
  }
  history.replaceState(null, "", "?" + query());
  const q = report.query;
  $("period").textContent = `Windows starting ${q.since || "(first)"} to before ` +
    `${q.until || "(last)"} UTC; hours and days in ${q.tz}. Counts below the devices' ` +
    "threshold are suppressed: totals marked ≥ are lower bounds.";
  for (const link of document.querySelectorAll("a.csv")) {
    link.href = `/api/report.csv?table=${link.dataset.table}&` + query();
  }
  drawStatus();
  $("stores").replaceChildren(...report.stores.map(drawStore));
  $("cameras").replaceChildren(...report.cameras.map(drawCamera));
  document.body.dataset.loaded = String(Date.now());  // for the browser tests
}

function cameraKey(c, ...path) { return ["camera", c.store_id, c.camera_id, ...path]; }

function drawStatus() {
  const rows = report.cameras.map((c) => {
    const lower = c.suppressed_counts > 0;
    return el("tr", {},
      el("td", {}, `${c.store_id} / ${c.camera_id}`),
      el("td", {class: c.status || ""}, fig(cameraKey(c, "status"), c.status,
                                            c.status || "unknown")),
      el("td", {}, fig(cameraKey(c, "last_window"), c.last_window)),
      ...(c.health ? [
        el("td", {}, fig(cameraKey(c, "health", "time"), c.health.time)),
        el("td", {}, fig(cameraKey(c, "health", "fps"), c.health.fps)),
        el("td", {}, fig(cameraKey(c, "health", "spool_depth"), c.health.spool_depth))]
        : [el("td", {}, "-"), el("td", {}, "-"), el("td", {}, "-")]),
      el("td", {}, fig(cameraKey(c, "windows"), c.windows)),
      el("td", {}, fig(cameraKey(c, "coverage"), c.coverage, pct(c.coverage))),
      el("td", {}, fig(cameraKey(c, "suppressed_counts"), c.suppressed_counts)),
      el("td", {}, ...Object.entries(c.lines).map(([name, n]) => el("div", {}, `${name}: in `,
        fig(cameraKey(c, "lines", name, "in"), n.in, undefined, lower), ", out ",
        fig(cameraKey(c, "lines", name, "out"), n.out, undefined, lower)))));
  });
  $("status").replaceChildren(el("tr", {}, ...["camera", "status", "last window",
    "last health", "fps", "spool depth", "windows",
    "coverage", "suppressed counts", "in / out per line"].map((h) => el("th", {}, h))), ...rows);
}

function drawStore(s) {
  const key = (...path) => ["store", s.store_id, ...path];
  const parts = [el("h2", {}, `Store ${s.store_id}`)];
  if (s.age) {
    parts.push(el("h3", {}, `Age profile (${s.age.cameras} cameras)`),
               ageTable(s.age.age_bands, s.age.age_shares, (...p) => key("age", ...p)));
  }
  if (s.behaviour) {
    const b = s.behaviour;
    parts.push(el("p", {}, "Accompanied: ", share(b.accompanied, key("behaviour", "accompanied"),
                                                   "people in groups")),
               el("p", {}, "Interacted without reaching checkout: ",
                  share(b.interacted_without_checkout,
                        key("behaviour", "interacted_without_checkout"), "who interacted")));
    if (b.top_shelves.length) {
      parts.push(el("h3", {}, "Top shelves"), el("table", {}, el("tr", {},
        el("th", {}, "camera / shelf"), el("th", {}, "interactions")),
        ...b.top_shelves.slice(0, 10).map((t, i) => el("tr", {},
          el("td", {}, `${t.camera_id} / ${t.zone}`),
          el("td", {}, fig(key("behaviour", "top_shelves", i, "interactions"), t.interactions,
                           undefined, t.suppressed > 0))))));
    }
  }
  return el("div", {class: "store"}, parts);
}

function share(s, key, whole) {
  return el("span", {}, fig([...key, "share"], s.share, pct(s.share)),
    ` (${s.part} of ${s.whole} ${whole}` +
    (s.left_out_windows ? `, ${s.left_out_windows} of ${s.windows} windows left out: ` +
     "suppressed)" : ")"));
}

function ageTable(bands, shares, key) {
  const max = Math.max(1, ...Object.values(shares));
  return el("table", {}, el("tr", {}, ...["age band", "visitors", "share of known", ""]
    .map((h) => el("th", {}, h))),
    ...Object.entries(bands).map(([band, n]) => el("tr", {},
      el("td", {}, band), el("td", {}, fig(key("age_bands", band), n)),
      el("td", {}, band in shares ? fig(key("age_shares", band), shares[band],
                                        pct(shares[band])) : "-"),
      el("td", {}, svg("svg", {width: 120, height: 10}, svg("rect", {class: "bar-age",
        width: 120 * (shares[band] || 0) / max, height: 10}))))));
}

function hourChart(c) {
  const hours = Object.keys(c.hours);
  const totals = hours.map((h) => Object.values(c.hours[h]).reduce(
    (sum, n) => [sum[0] + n.in, sum[1] + n.out], [0, 0]));
  const max = Math.max(1, ...totals.flat());
  const step = 14, height = 140, left = 30, width = left + step * hours.length + 70;
  const chart = svg("svg", {width, height: height + 60, class: "hours",
                            "data-bars": String(hours.length), viewBox: `0 -10 ${width} ` +
                            `${height + 60}`});
  for (const tick of [0, max]) {
    chart.append(svg("text", {x: 0, y: height - tick * height / max + 4}, String(tick)));
  }
  hours.forEach((hour, i) => {
    const x = left + i * step;
    totals[i].forEach((n, j) => chart.append(svg("rect", {
      class: j ? "bar-out" : "bar-in", x: x + j * 6, width: 6, y: height - n * height / max,
      height: n * height / max}, svg("title", {}, `${hour}: ${n} ${j ? "out" : "in"}`))));
    if (i % Math.ceil(hours.length / 12) === 0) {
      chart.append(svg("text", {x, y: height + 12, transform: `rotate(40 ${x} ${height + 12})`},
                       hour.slice(5)));
    }
  });
  return chart;
}

function drawCamera(c) {
  const key = (...path) => cameraKey(c, ...path);
  const lower = c.suppressed_counts > 0;
  const parts = [el("h2", {}, `${c.store_id} / ${c.camera_id}`),
    el("p", {class: "note"}, `${c.windows} windows (${c.partial_windows} partial), ` +
       `${c.first_window} .. ${c.last_window}, coverage ${pct(c.coverage)}` +
       (lower ? `; ${c.suppressed_counts} counts suppressed on the device: totals are lower ` +
        "bounds" : "") +
       (c.repeated_windows ? `; ${c.repeated_windows} windows observed a time another had ` +
        "observed (the device's clock was set back): the hours marked twice count both" : ""))];
  const days = el("table", {}, el("tr", {}, el("th", {}, "day"), el("th", {}, "footfall")),
    ...Object.entries(c.footfall_by_day).map(([day, n]) => el("tr", {}, el("td", {}, day),
      el("td", {}, fig(key("footfall_by_day", day), n, undefined, lower)))));
  const names = Object.keys(c.lines);
  const hours = el("table", {class: "hours-table"}, el("tr", {}, el("th", {}, "hour"),
    el("th", {}, "footfall"), ...names.map((n) => el("th", {}, `${n} in / out`))),
    ...Object.entries(c.hours).map(([hour, lines]) => el("tr", {}, el("td", {},
      hour in c.observed_twice ? `${hour} (twice)` : hour),
      el("td", {}, fig(key("footfall_by_hour", hour), c.footfall_by_hour[hour], undefined,
                       lower)),
      ...names.map((n) => el("td", {}, lines[n] ? [
        fig(key("hours", hour, n, "in"), lines[n].in), " / ",
        fig(key("hours", hour, n, "out"), lines[n].out)] : "-")))));
  parts.push(el("div", {class: "grid"},
    el("div", {}, el("h3", {}, "Footfall by hour (in, out) ",
                     el("a", {class: "csv", href: "/api/report.csv?table=hours&" + query()},
                        "CSV")),
       hourChart(c), el("p", {}, "Peak hour: ", fig(key("peak_hour"), c.peak_hour))),
    el("div", {}, el("h3", {}, "Footfall by day"), days)),
    el("details", {}, el("summary", {}, "Hours, in / out per line"), hours));
  if (Object.keys(c.age_bands).length) {
    parts.push(el("h3", {}, "Age profile"), ageTable(c.age_bands, c.age_shares, key));
  }
  if (c.behaviour) parts.push(behaviour(c, key));
  return el("div", {class: "camera", "data-camera": `${c.store_id}/${c.camera_id}`}, parts);
}

function behaviour(c, key) {
  const b = c.behaviour, k = (...p) => key("behaviour", ...p);
  const zones = Object.entries(b.zones);
  const out = [el("h3", {}, `Behaviour (${b.windows} windows) `,
    el("a", {class: "csv", href: "/api/report.csv?table=zones&" + query()}, "CSV"))];
  if (zones.length) {
    out.push(el("table", {class: "zones"}, el("tr", {}, ...["zone", "kind", "visits",
      "dwell / wait p50", "p90", "occupancy mean", "max", "interactions"]
      .map((h) => el("th", {}, h))),
      ...zones.map(([name, z]) => el("tr", {}, el("td", {}, name), el("td", {}, z.kind),
        el("td", {}, fig(k("zones", name, "visits"), z.visits, undefined,
                         z.suppressed.visits > 0)),
        el("td", {}, fig(k("zones", name, "dwell", "p50"), z.dwell.p50, secs(z.dwell, "p50"))),
        el("td", {}, fig(k("zones", name, "dwell", "p90"), z.dwell.p90, secs(z.dwell, "p90"))),
        el("td", {}, fig(k("zones", name, "occupancy_mean"), z.occupancy_mean)),
        el("td", {}, fig(k("zones", name, "occupancy_max"), z.occupancy_max)),
        el("td", {}, fig(k("zones", name, "interactions"), z.interactions, undefined,
                         z.suppressed.interactions > 0))))));
  }
  if (b.top_shelves.length) {
    out.push(el("p", {}, "Top shelves: ", b.top_shelves.slice(0, 10).map((t) => `${t.zone} ` +
      `${t.interactions}`).join(", ")));
  }
  if (Object.keys(b.journeys).length > 1) {
    out.push(el("p", {}, "Interacted without reaching checkout: ",
                share(b.interacted_without_checkout, k("interacted_without_checkout"),
                      "who interacted")));
  }
  if (Object.keys(b.groups.sizes).length) {
    out.push(el("p", {}, "Accompanied: ", share(b.accompanied, k("accompanied"),
                                                "people in groups")));
  }
  if (b.heatmap) out.push(heatmap(c));
  return el("div", {}, out);
}

// Person-seconds per cell over the camera's plan (its people-free plate); hatched grey:
// blanked for privacy in every window.
function heatmap(c) {
  const h = c.behaviour.heatmap;
  const known = cameras.find((x) => x.store_id === c.store_id && x.camera_id === c.camera_id);
  const box = el("div", {class: "heatmap"});
  const canvas = el("canvas", {"data-total": String(h.total_person_seconds)});
  const draw = (width, height) => {
    canvas.width = width;
    canvas.height = height;
    const g = canvas.getContext("2d");
    const values = h.person_seconds.flat().filter((v) => v !== null);
    const max = Math.max(1, ...values);
    const w = width / h.cols, ht = height / h.rows;
    h.person_seconds.forEach((row, y) => row.forEach((v, x) => {
      if (v === null) {
        g.fillStyle = "rgba(128,128,128,0.5)";
        g.fillRect(x * w, y * ht, w, ht);
        g.strokeStyle = "rgba(80,80,80,0.8)";
        g.beginPath();
        for (let d = -ht; d < w; d += 8) { g.moveTo(x * w + d, y * ht + ht); g.lineTo(x * w + d + ht, y * ht); }
        g.save(); g.rect(x * w, y * ht, w, ht); g.clip(); g.stroke(); g.restore();
      } else if (v > 0) {
        const t = v / max;  // blue (few) to red (many), more opaque where more people were
        g.fillStyle = `hsla(${240 - 240 * t}, 90%, 50%, ${0.25 + 0.45 * t})`;
        g.fillRect(x * w, y * ht, w, ht);
      }
    }));
  };
  if (known && known.plan) {
    const plan = el("img", {alt: `plan of ${c.store_id}/${c.camera_id}`,
      src: `/api/plan?store=${encodeURIComponent(c.store_id)}&camera=` +
           encodeURIComponent(c.camera_id)});
    plan.addEventListener("load", () => draw(plan.naturalWidth, plan.naturalHeight));
    box.append(plan, canvas);
  } else {
    canvas.style.position = "static";
    canvas.style.background = "#eee";
    draw(640, Math.round(640 * h.rows / h.cols));
    box.append(canvas, el("p", {class: "note"}, "No plan image for this camera " +
      `(shopper-hq plan set --store ${c.store_id} --camera ${c.camera_id} FILE).`));
  }
  return el("div", {}, el("h3", {}, `Where people were (${h.windows} windows, `,
    fig(cameraKey(c, "behaviour", "heatmap", "total_person_seconds"), h.total_person_seconds),
    " person-seconds)"), box);
}

async function start() {
  const params = new URLSearchParams(location.search);
  for (const name of ["from", "to", "tz"]) if (params.get(name)) $(name).value = params.get(name);
  try {
    cameras = (await getJSON("/api/cameras")).cameras;
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
    return;
  }
  const stores = [...new Set(cameras.map((c) => c.store_id))];
  $("store").append(...stores.map((s) => el("option", {value: s}, s)));
  // A chain has thousands of cameras: open on one store, not on every camera at once.
  $("store").value = params.get("store") || (cameras.length > 24 ? stores[0] : "");
  fillCameras();
  $("camera").value = params.get("camera") || "";
  $("store").addEventListener("change", fillCameras);
  $("query").addEventListener("submit", (event) => { event.preventDefault(); show(); });
  await show();
}
start();
