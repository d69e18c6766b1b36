// Adaptarium dashboard: vanilla JS, hash routing, reads only the public REST API (/api/v1).
//
// Live job updates: the events endpoint is read with fetch() and a ReadableStream parsing Server-Sent Events, not
// with EventSource, because EventSource cannot send the Authorization header and a token in the URL would end up in
// access logs. When streaming fails (proxy buffering, older hub) the page falls back to polling `?after=`.
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

function el(html) { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstChild; }

function flash(msg, ok = false) {
  const f = document.getElementById("flash");
  f.textContent = msg; f.className = ok ? "ok" : ""; f.hidden = false;
  clearTimeout(flash.timer); flash.timer = setTimeout(() => { f.hidden = true; }, 6000);
}

function every(ms, fn) { const t = setInterval(fn, ms); viewCleanup.push(() => clearInterval(t)); }

function when(ts) { return ts ? new Date(ts).toLocaleString() : ""; }

function duration(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const s = Math.max(0, (end - new Date(job.started_at)) / 1000);
  return s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

function pct(p) { return Math.round(Math.max(0, Math.min(1, Number(p) || 0)) * 100); }

function progressBar(job, big = false) {
  const p = pct(job.progress);
  return `<div class="progress${big ? " big" : ""}" data-progress="${p}"><div class="bar" style="width:${p}%"></div>` +
         `<span class="pct">${p} %</span></div>`;
}

function stateBadge(state) { return `<span class="state state-${esc(state)}" data-state="${esc(state)}">${esc(state)}</span>`; }

// "ns/name@N" of an adapter, dataset or generator -> dashboard link to that version.
function refLink(ref, object = "adapter") {
  const s = String(ref);
  const m = s.match(/^([^/@]+)\/([^/@]+)(?:@(.+))?$/);
  if (!m || s.startsWith("builtin:")) return esc(s);
  return `<a class="ref" data-object="${esc(object)}" href="#/${esc(object)}s/${esc(m[1])}/${esc(m[2])}${m[3] ? "@" + esc(m[3]) : ""}">${esc(s)}</a>`;
}

let kindsCache = null;  // GET /job-kinds, read once: which params of each kind name registry objects
async function jobKinds() {
  if (!kindsCache) kindsCache = api("/job-kinds").then(b => Object.fromEntries(b.items.map(k => [k.name, k])));
  return kindsCache;
}

function kv(obj) {
  const rows = Object.entries(obj || {}).map(([k, v]) =>
    `<dt>${esc(k)}</dt><dd>${typeof v === "object" && v !== null ? `<pre class="json">${esc(JSON.stringify(v, null, 1))}</pre>` : esc(v)}</dd>`);
  return rows.length ? `<dl class="kv">${rows.join("")}</dl>` : `<p class="muted">none</p>`;
}

// ---------- views ----------

async function viewJobs(root) {
  root.innerHTML = `<h1>Jobs</h1>
    <p><select id="filter-state"><option value="">any state</option>${["queued", "running", "succeeded", "failed", "cancelled"]
      .map(s => `<option>${s}</option>`).join("")}</select> <a href="#/new">New job</a></p>
    <table id="jobs"><thead><tr><th>id</th><th>kind</th><th>state</th><th>progress</th><th>stage</th><th>duration</th>
    <th>created</th><th>results</th></tr></thead><tbody></tbody></table>`;
  const sel = root.querySelector("#filter-state");
  async function refresh() {
    const q = sel.value ? "?state=" + encodeURIComponent(sel.value) : "";
    const jobs = items(await api("/jobs" + q));
    root.querySelector("tbody").innerHTML = jobs.map(j => `<tr data-job="${esc(j.id)}">
      <td><a href="#/jobs/${esc(j.id)}">${esc(String(j.id).slice(0, 8))}</a></td><td>${esc(j.kind)}</td>
      <td>${stateBadge(j.state)}</td><td>${progressBar(j)}</td><td>${esc(j.stage || "")}</td><td>${duration(j)}</td>
      <td>${when(j.created_at)}</td><td>${(j.results || []).map(refLink).join(" ")}</td></tr>`).join("") ||
      `<tr><td colspan="8" class="muted">no jobs</td></tr>`;
  }
  sel.onchange = refresh;
  await refresh();
  every(1500, () => refresh().catch(() => {}));
}

async function viewJob(root, id) {
  root.innerHTML = `<h1>Job <span id="job-id">${esc(id)}</span></h1>
    <div class="card"><div id="job-head"></div></div>
    <div class="grid"><div class="card"><h2>Loss</h2><div id="loss"></div><div id="other-metrics"></div></div>
    <div class="card"><h2>Params</h2><div id="params"></div></div></div>
    <div class="card" id="result-card" hidden><h2>Result</h2><div id="result"></div></div>
    <div class="card"><h2>Log</h2><pre class="log" id="log"></pre></div>`;
  const kinds = await jobKinds();
  const series = new Map();  // metric name -> [[step, value]]
  const log = root.querySelector("#log");
  let job = null;

  function paramValue(kind, name, value) {
    const ref = kind && kind.references[name];
    if (ref && ref.object !== "base" && typeof value === "string") return refLink(value, ref.object);
    return typeof value === "object" && value !== null ? `<pre class="json">${esc(JSON.stringify(value, null, 1))}</pre>` : esc(value);
  }

  async function refreshJob() {
    job = await api("/jobs/" + encodeURIComponent(id));
    const kind = kinds[job.kind];
    const made = kind && ["adapter", "dataset", "generator"].includes(kind.output) ? kind.output : (kind ? kind.inputs.object : "adapter");
    root.querySelector("#job-head").innerHTML = `
      <p>${stateBadge(job.state)} <b>${esc(job.kind)}</b> <span class="muted">stage</span> <span id="stage">${esc(job.stage || "")}</span>
      <span class="muted">attempts</span> ${esc(job.attempts)} <span class="muted">worker</span> ${job.worker
        ? `<a id="job-worker" href="#/workers">${esc(job.worker)}</a> <span class="muted">on</span> <span id="job-device">${esc(job.device || "?")}</span>`
        : "<span class='muted'>none yet</span>"}
      <span class="muted">duration</span> ${duration(job)}</p>
      ${progressBar(job, true)}
      <dl class="kv" style="margin-top:10px">
        <dt>inputs</dt><dd>${job.inputs.map(r => refLink(r, kind ? kind.inputs.object : "adapter")).join(" ") || "none"}</dd>
        <dt>output</dt><dd>${job.output ? esc(job.output.namespace + "/" + job.output.name) : "<span class='muted'>none</span>"}</dd>
        <dt>results</dt><dd id="results">${job.results.map(r => refLink(r, made)).join(" ") || "<span class='muted'>none yet</span>"}</dd>
        <dt>created</dt><dd>${when(job.created_at)}</dd><dt>started</dt><dd>${when(job.started_at)}</dd>
        <dt>finished</dt><dd>${when(job.finished_at)}</dd>
        ${job.error ? `<dt>error</dt><dd class="error" id="job-error">${esc(job.error.type)}: ${esc(job.error.message)}</dd>` : ""}
      </dl>
      <p>${TERMINAL.has(job.state) ? `<button id="retry" class="secondary">Retry</button>` : `<button id="cancel" class="secondary">Cancel</button>`}</p>`;
    const cancel = root.querySelector("#cancel"), retry = root.querySelector("#retry");
    if (cancel) cancel.onclick = () => api(`/jobs/${id}/cancel`, { method: "POST" }).then(refreshJob).catch(e => flash(e.message));
    if (retry) retry.onclick = () => api(`/jobs/${id}/retry`, { method: "POST" }).then(refreshJob).catch(e => flash(e.message));
    const rows = Object.entries(job.params).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${paramValue(kind, k, v)}</dd>`);
    root.querySelector("#params").innerHTML = `<dl class="kv">${rows.join("")}</dl>`;
    if (job.result) {
      root.querySelector("#result-card").hidden = false;
      root.querySelector("#result").innerHTML = resultView(job.result);
    }
  }

  function drawMetrics() {
    root.querySelector("#loss").innerHTML = lossChart(series.get("loss") || []);
    root.querySelector("#other-metrics").innerHTML = [...series].filter(([n]) => n !== "loss" && n !== "lr")
      .map(([n, pts]) => `<h3>${esc(n)}</h3>${lossChart(pts, "metric-" + n.replace(/[^A-Za-z0-9_-]/g, "_"))}`).join("");
  }

  function onEvent(ev) {  // {seq, at, type: state|progress|log|metric|error, data}
    const d = ev.data;
    let line;
    if (ev.type === "metric") {
      if (!series.has(d.name)) series.set(d.name, []);
      series.get(d.name).push([d.step ?? series.get(d.name).length, d.value]);
      drawMetrics();
      if (d.name === "lr") return;
      line = `${d.name} = ${Number(d.value).toPrecision(5)}${d.step != null ? " (step " + d.step + ")" : ""}`;
    } else if (ev.type === "progress") line = `${pct(d.progress)} % ${d.stage || ""}`;
    else if (ev.type === "state") line = d.state + (d.results ? " " + d.results.join(" ") : "");
    else if (ev.type === "error") line = `${d.type}: ${d.message}\n${d.traceback || ""}`;
    else line = d.message;
    log.textContent += `${new Date(ev.at).toLocaleTimeString()} [${ev.type}] ${line}\n`;
    log.scrollTop = log.scrollHeight;
    if (ev.type === "state" || ev.type === "progress") refreshJob().catch(() => {});
  }

  await refreshJob();
  drawMetrics();
  followEvents(id, onEvent, () => job && TERMINAL.has(job.state));
  every(1000, () => { if (job && !TERMINAL.has(job.state)) refreshJob().catch(() => {}); });
}

// A job's result data: completions (infer) as a table, anything else as key/value.
function resultView(result) {
  if (Array.isArray(result.completions)) {
    return `<table id="completions"><thead><tr><th>prompt</th><th>completion</th>${result.gate_weights ? "<th>gate weight</th>" : ""}</tr></thead><tbody>
      ${result.completions.map((c, i) => `<tr><td>${esc(result.prompts ? result.prompts[i] : "")}</td><td class="completion">${esc(c)}</td>
        ${result.gate_weights ? `<td class="gate">${Number(result.gate_weights[i]).toFixed(3)}</td>` : ""}</tr>`).join("")}</tbody></table>`;
  }
  return kv(result);
}

// Stream events over SSE with fetch; fall back to polling ?after= when streaming is not possible.
function followEvents(id, onEvent, isDone) {
  const ctl = new AbortController();
  viewCleanup.push(() => ctl.abort());
  let after = null;
  const seen = new Set();
  const deliver = ev => {
    if (seen.has(ev.seq)) return;
    seen.add(ev.seq); after = ev.seq;
    onEvent(ev);
  };

  async function stream() {
    const res = await fetch(`${API}/jobs/${encodeURIComponent(id)}/events`, {
      headers: headers({ Accept: "text/event-stream" }), signal: ctl.signal });
    if (!res.ok || !(res.headers.get("content-type") || "").includes("text/event-stream") || !res.body)
      throw new Error("no event stream");
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const data = block.split("\n").filter(l => l.startsWith("data:")).map(l => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data) continue;
        const ev = JSON.parse(data);
        if (ev.seq !== undefined) deliver(ev);  // the closing "end" event carries no seq
      }
    }
  }

  async function poll() {
    while (!ctl.signal.aborted) {
      try {
        const q = after !== null ? "?after=" + encodeURIComponent(after) : "";
        items(await api(`/jobs/${encodeURIComponent(id)}/events${q}`, { signal: ctl.signal })).forEach(deliver);
      } catch (_) { if (ctl.signal.aborted) return; }
      if (isDone()) {  // one last read after the terminal state so the final lines are not lost
        try { items(await api(`/jobs/${encodeURIComponent(id)}/events${after !== null ? "?after=" + after : ""}`)).forEach(deliver); } catch (_) {}
        return;
      }
      await new Promise(r => setTimeout(r, 1000));
    }
  }

  stream().then(() => { if (!ctl.signal.aborted) poll(); }).catch(() => { if (!ctl.signal.aborted) poll(); });
}

// SVG line chart of [step, loss] points, drawn by hand to keep the page dependency-free.
function lossChart(points, id = "loss-chart") {
  const W = 480, H = 200, L = 46, B = 26, T = 10, R = 10;
  if (!points.length) return `<svg id="${id}" width="${W}" height="${H}"><text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="muted">no loss reported yet</text></svg>`;
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
  return `<svg id="${id}" width="${W}" height="${H}" data-points="${points.length}">
    <line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/>
    <text x="${L - 4}" y="${T + 8}" text-anchor="end">${y1.toPrecision(3)}</text>
    <text x="${L - 4}" y="${H - B}" text-anchor="end">${y0.toPrecision(3)}</text>
    <text x="${L}" y="${H - 8}">${x0}</text><text x="${W - R}" y="${H - 8}" text-anchor="end">step ${x1}</text>
    <path class="curve" d="${d}"/></svg>`;
}

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
  const list = items(await api(`/${plural}` + (q.toString() ? "?" + q : "")));
  root.querySelector("tbody").innerHTML = list.map(a => `<tr data-${esc(object)}="${esc(a.namespace)}/${esc(a.name)}">
      <td><a href="#/${esc(plural)}/${esc(a.namespace)}/${esc(a.name)}">${esc(a.namespace)}/${esc(a.name)}</a></td>
      <td>${esc(a.base || "")}</td><td>${esc(a.latest ?? "")}</td><td>${tagList(a.tags)}</td><td>${esc(a.description || "")}</td></tr>`)
    .join("") || `<tr><td colspan="5" class="muted">no ${esc(plural)}</td></tr>`;
}

function tagList(tags) { return Object.entries(tags).map(([t, v]) => `<span class="tag">${esc(t)}→${esc(v)}</span>`).join(""); }

async function viewArtifact(root, plural, ns, nameRef) {
  const object = plural.slice(0, -1);
  const [name, wanted] = nameRef.split("@");
  const base = `/${plural}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const [artifact, versionsBody] = await Promise.all([api(base), api(base + "/versions")]);
  const versions = items(versionsBody).slice().sort((a, b) => b.number - a.number);
  const newest = versions.find(v => !v.yanked) || versions[0];
  const ref = wanted || (newest ? newest.number : "latest");
  root.innerHTML = `<h1>${esc(ns)}/${esc(name)} <span class="muted">${esc(object)}</span></h1>
    <div class="card"><dl class="kv"><dt>base</dt><dd>${esc(artifact.base || "")}</dd>
      <dt>description</dt><dd>${esc(artifact.description || "")}</dd><dt>tags</dt><dd>${tagList(artifact.tags)}</dd></dl></div>
    <div class="grid"><div class="card"><h2>Versions</h2><table id="versions"><thead><tr><th>version</th><th>created</th><th>by</th><th></th></tr></thead><tbody>
      ${versions.map(v => `<tr data-version="${esc(v.number)}"><td><a href="#/${esc(plural)}/${esc(ns)}/${esc(name)}@${esc(v.number)}">v${esc(v.number)}</a></td>
        <td>${when(v.created_at)}</td><td>${v.job_id ? `<a href="#/jobs/${esc(v.job_id)}">job ${esc(v.job_id.slice(0, 8))}</a>` : esc(v.created_by || "")}</td>
        <td>${v.yanked ? "<span class='muted'>yanked</span>" : ""}</td></tr>`).join("")}
    </tbody></table></div><div class="card" id="version-card"><p class="muted">loading version…</p></div></div>
    <div id="extras"></div>
    <div class="card"><h2>Lineage</h2><div id="lineage"></div></div>`;
  const v = await api(`${base}/versions/${encodeURIComponent(ref)}`);
  root.querySelector("#version-card").innerHTML = `<h2 id="version-title">Version ${esc(v.number)}</h2>
    <dl class="kv"><dt>created</dt><dd>${when(v.created_at)}</dd><dt>by</dt><dd>${esc(v.created_by || "")}</dd>
    ${v.yanked ? "<dt>yanked</dt><dd>yes</dd>" : ""}</dl>
    <h2>Files</h2><table id="files"><tbody>${v.files.map(f => `<tr><td><a download href="${API}${base}/versions/${esc(v.number)}/files/${encodeURIComponent(f.name)}">${esc(f.name)}</a></td>
      <td>${esc(f.size)} B</td><td class="muted" title="${esc(f.sha256)}">${esc(f.sha256.slice(0, 12))}</td></tr>`).join("")}</tbody></table>
    <h2>Metrics</h2><div id="metrics">${kv(v.metrics)}</div>
    ${v.peft_config ? `<h2>Config</h2><pre class="json">${esc(JSON.stringify(v.peft_config, null, 1))}</pre>` : ""}`;
  for (const extra of versionExtras) {
    const html = extra(object, v);
    if (html) root.querySelector("#extras").insertAdjacentHTML("beforeend", html);
  }
  versionHooks.forEach(hook => hook(root, object, v));
  try {
    const lineage = await api(`${base}/versions/${encodeURIComponent(v.number)}/lineage`);
    root.querySelector("#lineage").innerHTML = lineageGraph({ version: v.ref, object }, lineage);
  } catch (e) { root.querySelector("#lineage").innerHTML = `<p class="muted">${esc(e.message)}</p>`; }
}

// Panels a method adds to a version page: versionExtras return HTML (or ""), versionHooks wire it up.
const versionExtras = [];
const versionHooks = [];

// Layered SVG graph: parents to the left, this version in the middle, children to the right. An edge to something
// the caller may not read arrives as {hidden: true} and is drawn as an unnamed, unlinked node.
function lineageGraph(self, body) {
  const key = n => n.hidden ? `hidden-${n.i}` : `${n.object}:${n.version}`;
  const selfKey = key(self);
  const nodes = new Map([[selfKey, { ...self, depth: 0 }]]);
  const edges = [];
  body.parents.forEach((p, i) => { const n = { ...p, i: "p" + i }; nodes.set(key(n), { ...n, depth: -1 }); edges.push({ from: key(n), to: selfKey, rel: p.relation }); });
  body.children.forEach((c, i) => { const n = { ...c, i: "c" + i }; nodes.set(key(n), { ...n, depth: 1 }); edges.push({ from: selfKey, to: key(n), rel: c.relation }); });
  const cols = new Map();
  for (const [k, n] of nodes) { if (!cols.has(n.depth)) cols.set(n.depth, []); cols.get(n.depth).push(k); }
  const ds = [...cols.keys()].sort((a, b) => a - b);
  const NW = 210, NH = 28, GX = 120, GY = 16;
  const rows = Math.max(...[...cols.values()].map(c => c.length));
  const W = ds.length * NW + (ds.length - 1) * GX + 20, H = rows * (NH + GY) + 20;
  const pos = new Map();
  ds.forEach((d, ci) => cols.get(d).forEach((k, ri) => pos.set(k, [10 + ci * (NW + GX), 10 + ri * (NH + GY) + (rows - cols.get(d).length) * (NH + GY) / 2])));
  const lines = edges.map(e => {
    const [x1, y1] = pos.get(e.from), [x2, y2] = pos.get(e.to);
    const a = [x1 + NW, y1 + NH / 2], b = [x2, y2 + NH / 2];
    return `<path class="edge" data-relation="${esc(e.rel)}" d="M${a[0]},${a[1]} C${a[0] + GX / 2},${a[1]} ${b[0] - GX / 2},${b[1]} ${b[0] - 2},${b[1]}"/>
      <text class="edge-label" x="${(a[0] + b[0]) / 2}" y="${(a[1] + b[1]) / 2 - 4}" text-anchor="middle">${esc(e.rel)}</text>`;
  });
  const drawn = [...pos].map(([k, [x, y]]) => {
    const n = nodes.get(k);
    const text = n.hidden ? "hidden" : (n.object !== "adapter" ? n.object + " " : "") + n.version;
    const label = `<rect width="${NW}" height="${NH}" rx="6"/><text x="${NW / 2}" y="${NH / 2 + 4}" text-anchor="middle">${esc(text.length > 32 ? text.slice(0, 31) + "…" : text)}</text>`;
    const m = n.hidden ? null : n.version.match(/^([^/@ ]+)\/([^/@ ]+)@(.+)$/);
    const inner = m && k !== selfKey ? `<a href="#/${esc(n.object)}s/${esc(m[1])}/${esc(m[2])}@${esc(m[3])}">${label}</a>` : label;
    return `<g class="node${k === selfKey ? " self" : ""}${n.hidden ? " hidden" : ""}" data-node="${esc(n.hidden ? "hidden" : n.version)}" data-object="${esc(n.object || "")}" transform="translate(${x},${y})"><title>${esc(text)}</title>${inner}</g>`;
  });
  return `<svg id="lineage-graph" width="${W}" height="${H}" data-edges="${edges.length}">
    ${lines.join("")}${drawn.join("")}</svg>${edges.length ? "" : `<p class="muted">no lineage: uploaded directly</p>`}`;
}

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
  async function refresh() {
    const body = await api("/workers");
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
  const bases = items(await api("/bases"));
  root.innerHTML = `<h1>Bases</h1><table id="bases"><thead><tr><th>name</th><th>architecture</th><th>aliases</th><th>modules</th><th></th></tr></thead><tbody>
    ${bases.map(b => `<tr data-base="${esc(b.name)}"><td>${esc(b.name)}</td><td>${esc(b.architecture)}</td><td>${esc(b.aliases.join(", "))}</td>
      <td>${esc(Object.keys(b.module_shapes).length)}</td><td><a href="#/adapters?base=${encodeURIComponent(b.name)}">adapters</a></td></tr>`).join("") ||
      `<tr><td colspan="5" class="muted">no bases</td></tr>`}</tbody></table>`;
}

// The form is built from GET /api/v1/job-kinds: each kind's inputs range, output and params JSON schema, and which
// params name registry objects. A new kind needs no code here.
async function viewNewJob(root) {
  const [kinds, bases, adapters, datasets, generators] = await Promise.all([
    api("/job-kinds").then(b => b.items), api("/bases").then(b => b.items), api("/adapters").then(b => b.items),
    api("/datasets").then(b => b.items), api("/generators").then(b => b.items).catch(() => [])]);
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

  function refOptions(object, builtin) {
    if (object === "base") return bases.map(b => `<option value="${esc(b.name)}">${esc(b.name)}</option>`).join("");
    const list = (objects[object] || []).map(o => `${o.namespace}/${o.name}@${o.latest ?? "latest"}`);
    return (builtin ? ["builtin:boolean_expressions?n=64&seed=0"] : []).concat(list)
      .map(v => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
  }

  function field(name, schema, ref, required) {
    const id = "p-" + name, types = (schema.anyOf || [schema]).map(t => t.type);
    const label = `<label for="${id}">${esc(name)}${required ? " *" : ""}${schema.description ? ` <span class="muted">${esc(schema.description)}</span>` : ""}</label>`;
    const def = schema.default;
    if (ref) return label + `<input id="${id}" list="${id}-list" data-param="${esc(name)}" data-kind="text"
        placeholder="${ref.object === "base" ? "base name" : "namespace/name@version"}${ref.builtin ? " or builtin:task" : ""}">
      <datalist id="${id}-list">${refOptions(ref.object, ref.builtin)}</datalist>`;
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

  function render() {
    const k = kind(), props = k.params_schema.properties || {}, required = new Set(k.params_schema.required || []);
    const inputs = k.inputs.max === 0 ? "" : `<label>${k.inputs.min === k.inputs.max ? k.inputs.min : k.inputs.min + "–" + k.inputs.max}
      input ${esc(k.inputs.object)} version(s)</label><div id="job-inputs">${(objects[k.inputs.object] || []).map(a => {
        const key = `${a.namespace}-${a.name}`;
        return `<div class="pick"><input type="checkbox" value="${esc(a.namespace)}/${esc(a.name)}" id="pick-${esc(key)}">
          <label for="pick-${esc(key)}">${esc(a.namespace)}/${esc(a.name)}</label> @ <input class="ref" value="${esc(a.latest ?? "latest")}"></div>`;
      }).join("") || "<p class='muted'>nothing to pick yet</p>"}</div>`;
    const output = ["adapter", "dataset", "generator"].includes(k.output)
      ? `<label for="output">output ${esc(k.output)} (namespace/name)</label><input id="output" name="output" placeholder="me/my-${esc(k.output)}" required>` : "";
    setTimeout(() => {  // a preset input (ns/name@N) arrives checked, at that version
      if (!preset) return;
      const [path, version] = preset.split("@");
      root.querySelectorAll("#job-inputs .pick").forEach(p => {
        if (p.querySelector("input[type=checkbox]").value !== path) return;
        p.querySelector("input[type=checkbox]").checked = true;
        if (version) p.querySelector("input.ref").value = version;
      });
    });
    $("#kind-fields").innerHTML = inputs + `<div class="params">${Object.entries(props)
      .map(([name, schema]) => `<div class="param">${field(name, schema, k.references[name], required.has(name))}</div>`).join("")}</div>` + output;
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
      .map(p => `${p.querySelector("input[type=checkbox]").value}@${p.querySelector("input.ref").value}`);
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

// ---------- method panels on version pages ----------

// "Try it": an infer job with ?wait=, so short prompts answer in place; O3 versions show each prompt's gate weight.
versionExtras.push((object, v) => object !== "adapter" ? "" : `<div class="card" id="try-it"><h2>Try it</h2>
  <textarea id="try-prompt" rows="3" placeholder="a prompt"></textarea>
  <div class="row"><div><label for="try-max">max new tokens</label><input id="try-max" type="number" min="1" max="512" value="32"></div>
  ${v.files.some(f => f.name.startsWith("o3/")) ? `<div><label for="try-gate">gate</label><select id="try-gate">
    <option value="auto">auto (O3 detectors)</option><option value="off">off (plain PEFT files)</option></select></div>` : ""}</div>
  <p><button id="try-run" type="button">Generate</button> <span class="muted" id="try-status"></span></p>
  <pre class="log" id="try-output"></pre></div>`);
versionHooks.push((root, object, v) => {
  const run = root.querySelector("#try-run");
  if (!run) return;
  run.onclick = async () => {
    const prompt = root.querySelector("#try-prompt").value;
    if (!prompt.trim()) { flash("type a prompt first"); return; }
    const gate = root.querySelector("#try-gate");
    const params = { prompts: [prompt], max_new_tokens: Number(root.querySelector("#try-max").value) || 32,
                     ...(gate ? { gate: gate.value } : {}) };
    root.querySelector("#try-status").textContent = "running…";
    run.disabled = true;
    try {
      let job = await api("/jobs?wait=30", { method: "POST", json: { kind: "infer", inputs: [v.ref], params } });
      while (!TERMINAL.has(job.state)) { await new Promise(r => setTimeout(r, 500)); job = await api("/jobs/" + job.id); }
      if (job.state !== "succeeded") throw new Error(job.error ? job.error.message : job.state);
      const r = job.result;
      root.querySelector("#try-output").innerHTML = `<span class="completion">${esc(r.completions[0])}</span>` +
        (r.gate_weights ? `\n<span class="gate" id="try-gate-weight">gate weight ${r.gate_weights[0].toFixed(3)}</span>` : "");
      root.querySelector("#try-status").innerHTML = `<a href="#/jobs/${esc(job.id)}">job ${esc(job.id.slice(0, 8))}</a>`;
    } catch (e) { root.querySelector("#try-status").textContent = ""; flash(e.message); }
    finally { run.disabled = false; }
  };
});

// The unlearning report of an O3 version: both loss terms over the steps, ‖A_k·A_tᵀ‖ against earlier requests,
// the detector's AUROC and the gate calibration.
versionExtras.push((object, v) => {
  const u = v.metrics.unlearn;
  if (!u) return "";
  const pts = xs => (xs || []).map((y, i) => [i + 1, y]);
  const overlap = (u.overlap || []).map(o => `<tr><td>request ${esc(o.request + 1)}</td><td>${o.mean_fro.toFixed(4)}</td><td>${o.max_fro.toFixed(4)}</td></tr>`).join("");
  const d = u.detector || {};
  return `<div class="card" id="unlearn-report"><h2>Unlearning report — request ${esc(u.n_requests)}</h2>
    <div class="grid"><div><h3>forget loss</h3>${lossChart(pts(u.losses), "unlearn-loss")}</div>
    <div><h3>orthogonality loss</h3>${lossChart(pts(u.orth_losses), "orth-loss")}</div></div>
    <h3>‖A_k·A_tᵀ‖ against earlier requests</h3>${overlap ? `<table id="overlap"><thead><tr><th></th><th>mean</th><th>max</th></tr></thead><tbody>${overlap}</tbody></table>` : "<p class='muted'>first request: nothing to be orthogonal to</p>"}
    <h3>detector</h3><dl class="kv"><dt>AUROC (held-out forget vs reference)</dt><dd id="auroc">${d.auroc == null ? "—" : Number(d.auroc).toFixed(3)}</dd>
    <dt>gate calibration m1 / m2 / s</dt><dd>${["m1", "m2", "s"].map(k => d[k] == null ? "—" : Number(d[k]).toPrecision(4)).join(" / ")}</dd></dl>
    <p class="muted">The o3/ detectors hold encoder features of the forget set: share this version only with those who may read that data.</p></div>`;
});

// A generator's page: its training curve and the size it takes against the checkpoints it was trained on (the
// paper's "1 %" claim, measured), and a form that generates an adapter from it.
versionExtras.push((object, v) => {
  if (object !== "generator") return "";
  const g = v.metrics.generator || {};
  const curve = (g.epochs || []).map(e => [e.epoch, e.loss ?? e.recon]);
  const mb = b => b == null ? "—" : (b / 1e6).toFixed(2) + " MB";
  return `<div class="card" id="generator-report"><h2>Generator</h2>
    <dl class="kv"><dt>condition</dt><dd>${esc(v.metrics.condition || "")}</dd>
    <dt>size</dt><dd id="size-ratio">${mb(g.generator_bytes)} against ${mb(g.checkpoint_bytes)} of checkpoints
      (${g.size_ratio == null ? "—" : (100 * g.size_ratio).toFixed(1) + " %"})</dd>
    <dt>checkpoints used</dt><dd>${esc(g.checkpoints_used ?? "")}</dd></dl>
    <h3>training loss per epoch</h3>${lossChart(curve, "generator-loss")}
    <p><a class="button" id="generate-link" href="#/new?kind=generate&input=${encodeURIComponent(v.ref)}">Generate an adapter from it…</a></p></div>`;
});

// ---------- routing ----------

const routes = [
  [/^#\/jobs\/([^/?]+)$/, viewJob],
  [/^#\/(adapters|datasets|generators)\/([^/?]+)\/([^/?]+)$/, viewArtifact],
  [/^#\/(adapters|datasets|generators)(?:\?.*)?$/, viewArtifacts],
  [/^#\/bases$/, viewBases],
  [/^#\/workers$/, viewWorkers],
  [/^#\/new(?:\?.*)?$/, viewNewJob],
  [/^#\/jobs(?:\?.*)?$/, viewJobs],
];

async function route() {
  viewCleanup.forEach(f => f()); viewCleanup = [];
  const hash = location.hash || "#/jobs";
  const root = document.getElementById("view");
  const section = hash.slice(2).split(/[/?]/)[0];
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.nav === section));
  for (const [re, view] of routes) {
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
  localStorage.setItem("adaptarium-token", document.getElementById("token").value.trim());
  flash("token saved", true);
  route();
};
window.addEventListener("hashchange", route);
route();
