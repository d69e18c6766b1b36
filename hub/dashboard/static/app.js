// Adaptarium dashboard: vanilla JS, hash routing, reads only the public REST API (/api/v1).
//
// Four plain scripts share one global scope, loaded in order with `defer`: app.js (helpers, list pages, the job
// form, routing), jobs.js (job list and job page), card.js (a version's page, read like a model card) and lineage.js
// (the lineage graph). Nothing is fetched from another host: an offline hub renders fully.
"use strict";

const API = "/api/v1";
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
let viewCleanup = [];  // timers and stream aborts owned by the current view, cleared on navigation

// ---------- small helpers ----------

function token() { return localStorage.getItem("adaptarium-token") || ""; }

function headers(extra = {}) {
  const h = Object.assign({}, extra);
  if (token()) h["Authorization"] = "Bearer " + token();
  return h;
}

async function api(path, opts = {}) {
  const init = Object.assign({}, opts, { headers: headers(opts.headers || {}) });
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(API + path, init);
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!res.ok) throw new Error(`${res.status}: ${errorText(body)}`);
  return body;
}

function errorText(body) {
  if (body && body.detail !== undefined) {
    const d = body.detail;
    if (Array.isArray(d)) return d.map(e => (e.loc ? e.loc.join(".") + ": " : "") + (e.msg || JSON.stringify(e))).join("; ");
    return typeof d === "string" ? d : JSON.stringify(d);
  }
  return typeof body === "string" ? body : JSON.stringify(body);
}

// Every list endpoint answers {"items": [...]} (see the response models in /openapi.json).
function items(body) { return body.items; }

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function flash(msg, ok = false) {
  const f = document.getElementById("flash");
  f.textContent = msg; f.className = ok ? "ok" : ""; f.hidden = false;
  clearTimeout(flash.timer); flash.timer = setTimeout(() => { f.hidden = true; }, 6000);
}

function every(ms, fn) { const t = setInterval(fn, ms); viewCleanup.push(() => clearInterval(t)); }

// A view's requests can answer after the reader has moved on; a view writes only while this says it is current.
function viewAlive() { let alive = true; viewCleanup.push(() => { alive = false; }); return () => alive; }

function when(ts) { return ts ? new Date(ts).toLocaleString() : ""; }

function seconds(s) {
  if (!isFinite(s)) return "";
  return s < 60 ? s.toFixed(1) + " s" : s < 3600 ? Math.floor(s / 60) + " min " + Math.round(s % 60) + " s"
    : Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
}

function duration(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return seconds(Math.max(0, (end - new Date(job.started_at)) / 1000));
}

function pct(p) { return Math.round(Math.max(0, Math.min(1, Number(p) || 0)) * 100); }

// The bar takes the job's state as a class, so a failed job's bar is red and a cancelled one grey, not blue.
function progressBar(job, big = false) {
  const p = pct(job.progress);
  return `<div class="progress${big ? " big" : ""} state-${esc(job.state)}" data-progress="${p}" data-state="${esc(job.state)}">` +
         `<div class="bar" style="width:${p}%"></div><span class="pct">${p} %</span></div>`;
}

function stateBadge(state) { return `<span class="state state-${esc(state)}" data-state="${esc(state)}">${esc(state)}</span>`; }

function shortId(id) { return String(id).slice(0, 12); }  // as `adaptarium jobs ls` prints it

// "ns/name@N" of an adapter, dataset or generator -> dashboard link to that version, marked with its kind when it is
// not an adapter (a transfer_kit job makes an adapter and a dataset of one name).
function refLink(ref, object = "adapter") {
  const s = String(ref);
  const m = s.match(/^([^/@]+)\/([^/@]+)(?:@(.+))?$/);
  if (!m || s.startsWith("builtin:")) return `<span class="ref-text">${esc(s)}</span>`;
  return `<a class="ref" data-object="${esc(object)}" href="#/${esc(object)}s/${esc(m[1])}/${esc(m[2])}${m[3] ? "@" + esc(m[3]) : ""}">` +
    `${object !== "adapter" ? `<span class="object">${esc(object)}</span> ` : ""}${esc(s)}</a>`;
}

let kindsCache = null;  // GET /job-kinds, read once: which params of each kind name registry objects
async function jobKinds() {
  if (!kindsCache) kindsCache = api("/job-kinds").then(b => Object.fromEntries(b.items.map(k => [k.name, k])));
  return kindsCache;
}

function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : v.toPrecision(4);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (v === null || v === undefined) return "—";
  return String(v);
}

function isScalar(v) { return v === null || ["string", "number", "boolean"].includes(typeof v); }

// Raw JSON is never shown unfolded: a nested value is a <details> the reader opens.
function folded(value, label = "show JSON") {
  return `<details class="json"><summary>${esc(label)}</summary><pre class="json">${esc(JSON.stringify(value, null, 1))}</pre></details>`;
}

// A two-column table of names and values; long names wrap (the table is fixed-layout, see app.css).
function kvTable(obj, id = "") {
  const rows = Object.entries(obj || {}).map(([k, v]) => `<tr data-key="${esc(k)}"><th scope="row">${esc(k)}</th><td>${
    isScalar(v) ? esc(fmt(v)) : Array.isArray(v) && v.every(isScalar) && v.length <= 12 ? esc(v.map(fmt).join(", "))
      : folded(v, Array.isArray(v) ? `${v.length} items` : `${Object.keys(v).length} fields`)}</td></tr>`);
  return rows.length ? `<table class="kv"${id ? ` id="${esc(id)}"` : ""}><tbody>${rows.join("")}</tbody></table>` : `<p class="muted">none</p>`;
}

// SVG line chart of [x, y] points, drawn by hand to keep the page dependency-free; it scales down to its column.
function lineChart(points, id = "loss-chart", empty = "no loss reported yet") {
  const W = 480, H = 200, L = 50, B = 26, T = 10, R = 12;
  const svg = inner => `<svg id="${esc(id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" data-points="${points.length}">${inner}</svg>`;
  if (!points.length) return svg(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="muted">${esc(empty)}</text>`);
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
  return svg(`<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/>
    <text x="${L - 4}" y="${T + 8}" text-anchor="end">${y1.toPrecision(3)}</text>
    <text x="${L - 4}" y="${H - B}" text-anchor="end">${y0.toPrecision(3)}</text>
    <text x="${L}" y="${H - 8}">${x0}</text><text x="${W - R}" y="${H - 8}" text-anchor="end">step ${x1}</text>
    <path class="curve" d="${d}"/>`);
}

function chartId(name) { return "chart-" + String(name).replace(/[^A-Za-z0-9_-]/g, "_"); }

// The query part of the hash (#/jobs?state=failed -> URLSearchParams).
function hashQuery() { return new URLSearchParams(location.hash.split("?")[1] || ""); }

// ---------- registry lists ----------

// Adapters, datasets and generators are versioned the same way; one list view and one page serve all three.
async function viewArtifacts(root, plural) {
  const object = plural.slice(0, -1);
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  root.innerHTML = `<h1>${esc(plural[0].toUpperCase() + plural.slice(1))}</h1>
    <form id="adapter-search"><input name="q" placeholder="search" value="${esc(params.get("q") || "")}">
    <input name="namespace" placeholder="namespace" value="${esc(params.get("namespace") || "")}">
    <input name="base" placeholder="base" value="${esc(params.get("base") || "")}"> <button>Filter</button></form><br>
    <table id="${esc(plural)}"><thead><tr><th>${esc(object)}</th><th>base</th><th>latest</th><th>tags</th><th>description</th></tr></thead><tbody></tbody></table>`;
  root.querySelector("#adapter-search").onsubmit = e => {
    e.preventDefault();
    const q = new URLSearchParams([...new FormData(e.target)].filter(([, v]) => v));
    location.hash = `#/${plural}` + (q.toString() ? "?" + q : "");
  };
  const q = new URLSearchParams([...params].filter(([k, v]) => v && ["q", "namespace", "base"].includes(k)));
  const alive = viewAlive();
  const list = items(await api(`/${plural}` + (q.toString() ? "?" + q : "")));
  if (!alive()) return;
  root.querySelector("tbody").innerHTML = list.map(a => `<tr data-${esc(object)}="${esc(a.namespace)}/${esc(a.name)}">
      <td><a href="#/${esc(plural)}/${esc(a.namespace)}/${esc(a.name)}">${esc(a.namespace)}/${esc(a.name)}</a></td>
      <td>${esc(a.base || "")}</td><td>${esc(a.latest ?? "")}</td><td>${tagList(a.tags)}</td><td>${esc(a.description || "")}</td></tr>`)
    .join("") || `<tr><td colspan="5" class="muted">no ${esc(plural)}</td></tr>`;
}

function tagList(tags) { return Object.entries(tags).map(([t, v]) => `<span class="tag">${esc(t)}→${esc(v)}</span>`).join(""); }


// The fleet: every worker process, its device and queues, whether its heartbeat is fresh, and what it runs. A job the
// caller may not see arrives as {hidden: true}: the worker is busy, and that is all the page can say.
function bytes(n) { return n == null ? "" : (n / 2 ** 30).toFixed(1) + " GiB"; }

function age(s) { return s < 60 ? s.toFixed(1) + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago"; }

function currentJob(j) {
  if (!j) return `<span class="muted">idle</span>`;
  if (j.hidden) return `<span class="busy">busy</span>`;
  return `<a class="current-job" href="#/jobs/${esc(j.id)}">${esc(j.kind)} ${esc(String(j.id).slice(0, 8))}</a> ${pct(j.progress)} %`;
}

async function viewWorkers(root) {
  root.innerHTML = `<h1>Workers</h1><p class="muted" id="workers-note"></p>
    <table id="workers"><thead><tr><th>name</th><th>host</th><th>device</th><th>queues</th><th>status</th>
    <th>current job</th><th>done / failed</th><th>last heartbeat</th></tr></thead><tbody></tbody></table>`;
  const alive = viewAlive();
  async function refresh() {
    const body = await api("/workers");
    if (!alive()) return;
    root.querySelector("#workers-note").textContent =
      `stale: no heartbeat for ${body.stale_after_beats} of its intervals; stopped: shut down cleanly`;
    root.querySelector("tbody").innerHTML = items(body).map(w => `<tr data-worker="${esc(w.name)}" data-status="${esc(w.status)}">
      <td>${esc(w.name)}</td><td>${esc(w.host)}</td>
      <td class="device">${esc(w.device)}${w.device_name && w.device_name !== w.device ? " · " + esc(w.device_name) : ""}
        ${w.memory_bytes ? `<span class="muted">${bytes(w.memory_bytes)}</span>` : ""} <span class="muted">${esc(w.dtype || "")}</span></td>
      <td>${esc(w.queues.join(", "))}</td><td>${stateBadge(w.status)}</td><td>${currentJob(w.current_job)}</td>
      <td>${esc(w.jobs_done)} / ${esc(w.jobs_failed)}</td><td title="${esc(w.heartbeat_at)}">${age(w.heartbeat_age_s)}</td></tr>`).join("") ||
      `<tr><td colspan="8" class="muted">no workers have registered</td></tr>`;
  }
  await refresh();
  every(2000, () => refresh().catch(() => {}));
}

async function viewBases(root) {
  const alive = viewAlive();
  const bases = items(await api("/bases"));
  if (!alive()) return;
  root.innerHTML = `<h1>Bases</h1><table id="bases"><thead><tr><th>name</th><th>architecture</th><th>aliases</th><th>modules</th><th></th></tr></thead><tbody>
    ${bases.map(b => `<tr data-base="${esc(b.name)}"><td>${esc(b.name)}</td><td>${esc(b.architecture)}</td><td>${esc(b.aliases.join(", "))}</td>
      <td>${esc(Object.keys(b.module_shapes).length)}</td><td><a href="#/adapters?base=${encodeURIComponent(b.name)}">adapters</a></td></tr>`).join("") ||
      `<tr><td colspan="5" class="muted">no bases</td></tr>`}</tbody></table>`;
}

// The form is built from GET /api/v1/job-kinds: each kind's inputs range, output, params JSON schema (type, limits,
// default and description of each field), which params are essential and which name registry objects. A new kind
// needs no code here.
async function viewNewJob(root) {
  const alive = viewAlive();
  const [kinds, bases, adapters, datasets, generators] = await Promise.all([
    api("/job-kinds").then(b => b.items), api("/bases").then(b => b.items), api("/adapters").then(b => b.items),
    api("/datasets").then(b => b.items), api("/generators").then(b => b.items).catch(() => [])]);
  if (!alive()) return;
  const objects = { adapter: adapters, dataset: datasets, generator: generators };
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const wanted = query.get("kind"), preset = query.get("input");  // e.g. from a generator's page
  root.innerHTML = `<h1>New job</h1><form class="job card" id="job-form">
    <label for="kind">kind</label><select id="kind" name="kind">${kinds.filter(k => k.name !== "noop")
      .map(k => `<option value="${esc(k.name)}"${k.name === wanted ? " selected" : ""}>${esc(k.name)} — ${esc(k.summary)}</option>`).join("")}</select>
    <div id="kind-fields"></div>
    <p><button id="submit-job" type="submit">Submit</button></p></form>`;
  const $ = s => root.querySelector(s);
  const kind = () => kinds.find(k => k.name === $("#kind").value);

  const tasks = (kinds.find(k => k.builtin_tasks) || {}).builtin_tasks || [];
  function refOptions(object, builtin) {
    const list = (objects[object] || []).map(o => `${o.namespace}/${o.name}@${o.latest ?? "latest"}`);
    return (builtin ? tasks.map(t => `builtin:${t}`) : []).concat(list)
      .map(v => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
  }

  // One param: its label, its description under it, and the widget its declared type asks for. Bases and choices are
  // pick lists; objects and built-in tasks are typed with a list of what exists to pick from.
  function field(name, schema, ref, required) {
    const id = "p-" + name, types = (schema.anyOf || [schema]).map(t => t.type), def = schema.default;
    const label = `<label for="${id}">${esc(name)}${required ? " *" : ""}</label>`
      + (schema.description ? `<small class="help" id="${id}-help">${esc(schema.description)}</small>` : "");
    const none = types.includes("null") || !required ? "<option value=''>(none)</option>" : "";
    if (ref && ref.object === "base") return label + `<select id="${id}" data-param="${esc(name)}" data-kind="text">${none}
      ${bases.map(b => `<option value="${esc(b.name)}">${esc(b.name)}</option>`).join("")}</select>`;
    if (ref) return label + `<input id="${id}" list="${id}-list" data-param="${esc(name)}" data-kind="text"
        placeholder="namespace/name@version${ref.builtin ? " or builtin:task" : ""}">
      <datalist id="${id}-list">${refOptions(ref.object, ref.builtin)}</datalist>`;
    if ((schema.anyOf || [schema]).some(t => t.pick === "builtin_task")) return label + `<input id="${id}" list="${id}-list"
        data-param="${esc(name)}" data-kind="text" placeholder="builtin:task?n=256&seed=0">
      <datalist id="${id}-list">${tasks.map(t => `<option value="builtin:${esc(t)}">`).join("")}</datalist>`;
    const en = schema.enum || (schema.anyOf || []).flatMap(t => t.enum || []);
    if (en.length) return label + `<select id="${id}" data-param="${esc(name)}" data-kind="text">${types.includes("null") ? "<option value=''>(default)</option>" : ""}
      ${en.map(v => `<option${v === def ? " selected" : ""}>${esc(v)}</option>`).join("")}</select>`;
    if (types.includes("boolean")) return `<div class="pick"><input type="checkbox" id="${id}" data-param="${esc(name)}" data-kind="bool"${def ? " checked" : ""}> ${label}</div>`;
    if (types.includes("integer") || types.includes("number"))
      return label + `<input id="${id}" type="number" step="any" data-param="${esc(name)}" data-kind="number" value="${def ?? ""}">`;
    if (types.includes("array")) return label + `<input id="${id}" data-param="${esc(name)}" data-kind="list"
      placeholder="comma separated" value="${esc(Array.isArray(def) ? def.join(",") : "")}">`;
    if (types.includes("object")) return label + `<input id="${id}" data-param="${esc(name)}" data-kind="json" placeholder="JSON">`;
    return label + `<input id="${id}" data-param="${esc(name)}" data-kind="text" value="${esc(def ?? "")}">`;
  }

  // An input's version is picked from the versions it has (newest first, yanked ones left out) and its tags.
  function versionPick(a) {
    const numbers = Array.from({ length: a.latest || 0 }, (_, i) => (a.latest || 0) - i)
      .filter(n => !(a.yanked || []).includes(n)).map(String);
    return `<select class="ref">${numbers.concat(Object.keys(a.tags || {})).map(v => `<option>${esc(v)}</option>`).join("")
      || "<option>latest</option>"}</select>`;
  }

  function render() {
    const k = kind(), props = k.params_schema.properties || {}, required = new Set(k.params_schema.required || []);
    const candidates = objects[k.inputs.object] || [];
    // inputs that must share one base (a merge, a generator family) are offered one base at a time
    const oneBase = k.inputs.max > 1 && k.inputs.object === "adapter";
    const baseFilter = oneBase ? `<label for="input-base">inputs on base</label><select id="input-base">
      ${[...new Set(candidates.map(a => a.base).filter(Boolean))].map(b => `<option>${esc(b)}</option>`).join("")}</select>` : "";
    const inputs = k.inputs.max === 0 ? "" : `<label>${k.inputs.min === k.inputs.max ? k.inputs.min : k.inputs.min + "–" + k.inputs.max}
      input ${esc(k.inputs.object)} version(s)</label>${baseFilter}<div id="job-inputs">${candidates.map(a => {
        const key = `${a.namespace}-${a.name}`;
        return `<div class="pick" data-base="${esc(a.base || "")}"><input type="checkbox" value="${esc(a.namespace)}/${esc(a.name)}" id="pick-${esc(key)}">
          <label for="pick-${esc(key)}">${esc(a.namespace)}/${esc(a.name)}</label> @ ${versionPick(a)}</div>`;
      }).join("") || "<p class='muted'>nothing to pick yet</p>"}</div>`;
    const output = ["adapter", "dataset", "generator"].includes(k.output)
      ? `<label for="output">output ${esc(k.output)} (namespace/name)</label><input id="output" name="output" placeholder="me/my-${esc(k.output)}" required>` : "";
    setTimeout(() => {  // a preset input (ns/name@N) arrives checked, at that version, with its base chosen
      if (!preset) return;
      const [path, version] = preset.split("@");
      root.querySelectorAll("#job-inputs .pick").forEach(p => {
        if (p.querySelector("input[type=checkbox]").value !== path) return;
        if ($("#input-base")) { $("#input-base").value = p.dataset.base; filterInputs(); }
        p.querySelector("input[type=checkbox]").checked = true;
        if (version) p.querySelector(".ref").value = version;
      });
    });
    // essential params first; the advanced ones folded away, each with its description
    const essential = new Set(k.essential || []), names = Object.keys(props);
    const block = list => list.map(name => `<div class="param">${field(name, props[name], k.references[name], required.has(name))}</div>`).join("");
    const advanced = names.filter(n => !essential.has(n));
    $("#kind-fields").innerHTML = inputs + `<div class="params essential">${block(names.filter(n => essential.has(n)))}</div>`
      + (advanced.length ? `<details class="advanced"><summary>advanced parameters (${advanced.length})</summary>
          <div class="params">${block(advanced)}</div></details>` : "") + output;
    if ($("#input-base")) { $("#input-base").onchange = filterInputs; filterInputs(); }
  }

  function filterInputs() {
    const base = $("#input-base").value;
    root.querySelectorAll("#job-inputs .pick").forEach(p => {
      const shown = p.dataset.base === base;
      p.hidden = !shown;
      if (!shown) p.querySelector("input[type=checkbox]").checked = false;
    });
  }

  function collect() {
    const k = kind(), params = {};
    root.querySelectorAll("[data-param]").forEach(box => {
      const name = box.dataset.param, how = box.dataset.kind, raw = (box.value || "").trim();
      const def = (k.params_schema.properties[name] || {}).default;
      if (how === "bool") { if (box.checked !== Boolean(def)) params[name] = box.checked; return; }
      if (raw === "") return;
      if (how === "number") { if (Number(raw) !== def) params[name] = Number(raw); }
      else if (how === "list") { const v = raw.split(",").map(x => x.trim()).filter(Boolean); if (JSON.stringify(v) !== JSON.stringify(def)) params[name] = v.map(x => isNaN(Number(x)) ? x : Number(x)); }
      else if (how === "json") params[name] = JSON.parse(raw);
      else if (raw !== def) params[name] = raw;
    });
    const inputs = [...root.querySelectorAll("#job-inputs .pick")].filter(p => p.querySelector("input[type=checkbox]").checked)
      .map(p => `${p.querySelector("input[type=checkbox]").value}@${p.querySelector(".ref").value}`);
    const body = { kind: k.name, inputs, params };
    if ($("#output")) body.output = $("#output").value;
    return body;
  }

  $("#kind").onchange = render; render();
  $("#job-form").onsubmit = async e => {
    e.preventDefault();
    try {
      const job = await api("/jobs", { method: "POST", json: collect() });
      location.hash = "#/jobs/" + job.id;
    } catch (err) { flash(err.message); }
  };
}


// ---------- token ----------

// A token is kept only once the hub has accepted it: a wrong one is answered 401 before anything says "saved".
async function saveToken(value) {
  if (value) {
    const res = await fetch(API + "/namespaces", { headers: { Authorization: "Bearer " + value } });
    if (res.status === 401) {
      let body = null; try { body = await res.json(); } catch (_) {}
      flash(`401: ${body ? errorText(body) : "token not accepted"}; nothing saved`);
      return;
    }
  }
  localStorage.setItem("adaptarium-token", value);
  flash(value ? "token saved" : "token cleared: reading as anonymous", true);
  route();
}

// ---------- routing ----------

function routes() {  // read when routing, so the views of the other scripts are defined by then
  return [
    [/^#\/jobs\/([^/?]+)$/, viewJob],
    [/^#\/(adapters|datasets|generators)\/([^/?]+)\/([^/?]+)$/, viewArtifact],
    [/^#\/(adapters|datasets|generators)(?:\?.*)?$/, viewArtifacts],
    [/^#\/bases$/, viewBases],
    [/^#\/workers$/, viewWorkers],
    [/^#\/new(?:\?.*)?$/, viewNewJob],
    [/^#\/jobs(?:\?.*)?$/, viewJobs],
  ];
}

async function route() {
  viewCleanup.forEach(f => f()); viewCleanup = [];
  const hash = location.hash || "#/jobs";
  const root = document.getElementById("view");
  const section = hash.slice(2).split(/[/?]/)[0];
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.nav === section));
  for (const [re, view] of routes()) {
    const m = hash.match(re);
    if (m) {
      try { await view(root, ...m.slice(1).map(decodeURIComponent)); }
      catch (e) { root.innerHTML = `<h1>Could not load this page</h1><p class="error" id="load-error">${esc(e.message)}</p>`; }
      return;
    }
  }
  root.innerHTML = `<h1>Not found</h1><p><a href="#/jobs">jobs</a></p>`;
}

document.getElementById("token").value = token();
document.getElementById("token-form").onsubmit = e => {
  e.preventDefault();
  saveToken(document.getElementById("token").value.trim()).catch(err => flash(err.message));
};
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
