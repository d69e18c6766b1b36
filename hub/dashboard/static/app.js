// Adaptarium dashboard: vanilla JS, hash routing, reads only the public REST API (/api/v1).
//
// Live job updates: the events endpoint is read with fetch() and a ReadableStream parsing Server-Sent Events, not
// with EventSource, because EventSource cannot send the Authorization header and a token in the URL would end up in
// access logs. When streaming fails (proxy buffering, older hub) the page falls back to polling `?after=`.
"use strict";

const API = "/api/v1";
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const MERGE_METHODS = ["lego", "linear", "cat", "svd", "ties", "dare_linear", "dare_ties"];
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

// List endpoints may answer a bare array or an object wrapping one; accept both.
function items(body) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== "object") return [];
  for (const k of ["items", "jobs", "adapters", "versions", "bases", "datasets", "events", "results"])
    if (Array.isArray(body[k])) return body[k];
  return [];
}

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

// "ns/name@N" -> dashboard link to that version.
function refLink(ref) {
  const s = String(ref);
  const m = s.match(/^([^/@]+)\/([^/@]+)(?:@(.+))?$/);
  if (!m || s.startsWith("builtin:")) return esc(s);
  return `<a class="ref" href="#/adapters/${esc(m[1])}/${esc(m[2])}${m[3] ? "@" + esc(m[3]) : ""}">${esc(s)}</a>`;
}

function inputRefs(inputs) {
  if (!inputs) return [];
  if (Array.isArray(inputs)) return inputs.map(x => typeof x === "string" ? x : (x.ref || JSON.stringify(x)));
  if (typeof inputs === "object") return Object.values(inputs).flat().map(String);
  return [String(inputs)];
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
    <div class="grid"><div class="card"><h2>Loss</h2><div id="loss"></div></div>
    <div class="card"><h2>Params</h2><div id="params"></div></div></div>
    <div class="card"><h2>Log</h2><pre class="log" id="log"></pre></div>`;
  const loss = [];  // [step, loss]
  const log = root.querySelector("#log");
  let job = null;

  async function refreshJob() {
    job = await api("/jobs/" + encodeURIComponent(id));
    root.querySelector("#job-head").innerHTML = `
      <p>${stateBadge(job.state)} <b>${esc(job.kind)}</b> <span class="muted">stage</span> <span id="stage">${esc(job.stage || "")}</span>
      <span class="muted">attempts</span> ${esc(job.attempts ?? "")} <span class="muted">worker</span> ${esc(job.worker || "")}
      <span class="muted">duration</span> ${duration(job)}</p>
      ${progressBar(job, true)}
      <dl class="kv" style="margin-top:10px">
        <dt>inputs</dt><dd>${inputRefs(job.inputs).map(refLink).join(" ") || "none"}</dd>
        <dt>output</dt><dd>${esc(typeof job.output === "object" ? JSON.stringify(job.output) : job.output ?? "")}</dd>
        <dt>results</dt><dd id="results">${(job.results || []).map(refLink).join(" ") || "<span class='muted'>none yet</span>"}</dd>
        <dt>created</dt><dd>${when(job.created_at)}</dd><dt>started</dt><dd>${when(job.started_at)}</dd>
        <dt>finished</dt><dd>${when(job.finished_at)}</dd>
        ${job.error ? `<dt>error</dt><dd class="error">${esc(typeof job.error === "object" ? JSON.stringify(job.error) : job.error)}</dd>` : ""}
      </dl>
      <p>${TERMINAL.has(job.state) ? `<button id="retry" class="secondary">Retry</button>` : `<button id="cancel" class="secondary">Cancel</button>`}</p>`;
    const cancel = root.querySelector("#cancel"), retry = root.querySelector("#retry");
    if (cancel) cancel.onclick = () => api(`/jobs/${id}/cancel`, { method: "POST" }).then(refreshJob).catch(e => flash(e.message));
    if (retry) retry.onclick = () => api(`/jobs/${id}/retry`, { method: "POST" })
      .then(j => { location.hash = "#/jobs/" + (j && j.id ? j.id : id); route(); }).catch(e => flash(e.message));
    root.querySelector("#params").innerHTML = kv(job.params);
  }

  function onEvent(ev) {
    const data = ev.data && typeof ev.data === "object" ? ev.data : (ev.metrics || ev.payload || {});
    // metric events are {"type": "metric", "data": {"name": "loss", "value", "step"}}
    const lossValue = ev.loss ?? data.loss ?? (data.name === "loss" ? data.value : undefined);
    if (lossValue !== undefined && lossValue !== null) {
      loss.push([Number(ev.step ?? data.step ?? loss.length), Number(lossValue)]);
      root.querySelector("#loss").innerHTML = lossChart(loss);
    }
    const msg = ev.message ?? data.message ?? (lossValue !== undefined ? `step ${ev.step ?? data.step} loss ${Number(lossValue).toFixed(4)}` : JSON.stringify(data));
    const kind = ev.type || ev.kind || ev.level || "";
    log.textContent += `${ev.at ? new Date(ev.at).toLocaleTimeString() + " " : ""}${kind ? "[" + kind + "] " : ""}${msg}\n`;
    log.scrollTop = log.scrollHeight;
    if (ev.progress !== undefined || ev.state !== undefined || kind === "state" || kind === "progress") refreshJob().catch(() => {});
  }

  await refreshJob();
  root.querySelector("#loss").innerHTML = lossChart(loss);
  followEvents(id, onEvent, () => job && TERMINAL.has(job.state));
  every(1000, () => { if (job && !TERMINAL.has(job.state)) refreshJob().catch(() => {}); });
}

// Stream events over SSE with fetch; fall back to polling ?after= when streaming is not possible.
function followEvents(id, onEvent, isDone) {
  const ctl = new AbortController();
  viewCleanup.push(() => ctl.abort());
  let after = null;
  const seen = new Set();
  const deliver = ev => {
    const key = ev.id ?? ev.seq;
    if (key !== undefined) { if (seen.has(key)) return; seen.add(key); after = key; }
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
        try { deliver(JSON.parse(data)); } catch (_) { onEvent({ message: data }); }
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
function lossChart(points) {
  const W = 480, H = 200, L = 46, B = 26, T = 10, R = 10;
  if (!points.length) return `<svg id="loss-chart" width="${W}" height="${H}"><text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="muted">no loss reported yet</text></svg>`;
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
  return `<svg id="loss-chart" width="${W}" height="${H}" data-points="${points.length}">
    <line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/>
    <text x="${L - 4}" y="${T + 8}" text-anchor="end">${y1.toPrecision(3)}</text>
    <text x="${L - 4}" y="${H - B}" text-anchor="end">${y0.toPrecision(3)}</text>
    <text x="${L}" y="${H - 8}">${x0}</text><text x="${W - R}" y="${H - 8}" text-anchor="end">step ${x1}</text>
    <path class="curve" d="${d}"/></svg>`;
}

async function viewAdapters(root) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  root.innerHTML = `<h1>Adapters</h1>
    <form id="adapter-search"><input name="q" placeholder="search" value="${esc(params.get("q") || "")}">
    <input name="namespace" placeholder="namespace" value="${esc(params.get("namespace") || "")}">
    <input name="base" placeholder="base" value="${esc(params.get("base") || "")}"> <button>Filter</button></form><br>
    <table id="adapters"><thead><tr><th>adapter</th><th>base</th><th>latest</th><th>tags</th><th>description</th></tr></thead><tbody></tbody></table>`;
  root.querySelector("#adapter-search").onsubmit = e => {
    e.preventDefault();
    const q = new URLSearchParams([...new FormData(e.target)].filter(([, v]) => v));
    location.hash = "#/adapters" + (q.toString() ? "?" + q : "");
  };
  const q = new URLSearchParams([...params].filter(([k, v]) => v && ["q", "namespace", "base"].includes(k)));
  const list = items(await api("/adapters" + (q.toString() ? "?" + q : "")));
  root.querySelector("tbody").innerHTML = list.map(a => {
    const ns = a.namespace, name = a.name;
    return `<tr data-adapter="${esc(ns)}/${esc(name)}"><td><a href="#/adapters/${esc(ns)}/${esc(name)}">${esc(ns)}/${esc(name)}</a></td>
      <td>${esc(a.base || a.base_model || "")}</td><td>${esc(a.latest_version ?? a.latest ?? "")}</td>
      <td>${tagList(a.tags)}</td><td>${esc(a.description || "")}</td></tr>`;
  }).join("") || `<tr><td colspan="5" class="muted">no adapters</td></tr>`;
}

function tagList(tags) {
  if (!tags) return "";
  if (Array.isArray(tags)) return tags.map(t => `<span class="tag">${esc(typeof t === "object" ? `${t.name ?? t.tag}→${t.version}` : t)}</span>`).join("");
  return Object.entries(tags).map(([t, v]) => `<span class="tag">${esc(t)}→${esc(v)}</span>`).join("");
}

function versionNumber(v) { return v.version ?? v.number; }

async function viewAdapter(root, ns, nameRef) {
  const [name, wanted] = nameRef.split("@");
  const base = `/adapters/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const [adapter, versionsBody] = await Promise.all([api(base), api(base + "/versions")]);
  const versions = items(versionsBody).slice().sort((a, b) => versionNumber(b) - versionNumber(a));
  const newest = versions.find(v => !v.yanked) || versions[0];
  const ref = wanted || (newest ? versionNumber(newest) : "latest");
  root.innerHTML = `<h1>${esc(ns)}/${esc(name)}</h1>
    <div class="card"><dl class="kv"><dt>base</dt><dd>${esc(adapter.base || adapter.base_model || "")}</dd>
      <dt>description</dt><dd>${esc(adapter.description || "")}</dd><dt>tags</dt><dd>${tagList(adapter.tags)}</dd></dl></div>
    <div class="grid"><div class="card"><h2>Versions</h2><table id="versions"><thead><tr><th>version</th><th>created</th><th>by</th><th></th></tr></thead><tbody>
      ${versions.map(v => `<tr data-version="${esc(versionNumber(v))}"><td><a href="#/adapters/${esc(ns)}/${esc(name)}@${esc(versionNumber(v))}">v${esc(versionNumber(v))}</a></td>
        <td>${when(v.created_at)}</td><td>${esc(v.created_by || v.creator || "")}</td><td>${v.yanked ? "<span class='muted'>yanked</span>" : ""}</td></tr>`).join("")}
    </tbody></table></div><div class="card" id="version-card"><p class="muted">loading version…</p></div></div>
    <div class="card"><h2>Lineage</h2><div id="lineage"></div></div>`;
  const v = await api(`${base}/versions/${encodeURIComponent(ref)}`);
  const num = versionNumber(v) ?? ref;
  const files = items(v.files || v.manifest || []);
  root.querySelector("#version-card").innerHTML = `<h2 id="version-title">Version ${esc(num)}</h2>
    <dl class="kv"><dt>created</dt><dd>${when(v.created_at)}</dd><dt>by</dt><dd>${esc(v.created_by || v.creator || v.job_id || "")}</dd>
    ${v.yanked ? "<dt>yanked</dt><dd>yes</dd>" : ""}</dl>
    <h2>Files</h2><table id="files"><tbody>${files.map(f => `<tr><td><a download href="${API}${base}/versions/${esc(num)}/files/${encodeURIComponent(f.name || f.filename)}">${esc(f.name || f.filename)}</a></td>
      <td>${esc(f.size ?? "")} B</td><td class="muted" title="${esc(f.sha256)}">${esc(String(f.sha256 || "").slice(0, 12))}</td></tr>`).join("")}</tbody></table>
    <h2>Metrics</h2><div id="metrics">${kv(v.metrics)}</div>
    <h2>Config</h2><pre class="json">${esc(JSON.stringify(v.config || v.peft_config || {}, null, 1))}</pre>`;
  try {
    const lineage = await api(`${base}/versions/${encodeURIComponent(num)}/lineage`);
    root.querySelector("#lineage").innerHTML = lineageGraph(`${ns}/${name}@${num}`, lineage);
  } catch (e) { root.querySelector("#lineage").innerHTML = `<p class="muted">${esc(e.message)}</p>`; }
}

function nodeRef(n) {
  if (typeof n === "string") return n;
  if (!n) return "?";
  if (n.ref) return n.ref;
  if (n.dataset) return "dataset " + nodeRef(n.dataset);
  const ns = n.namespace, name = n.name ?? n.adapter, ver = n.version ?? n.number;
  return ns && name ? `${ns}/${name}${ver !== undefined ? "@" + ver : ""}` : JSON.stringify(n);
}

// Normalise the lineage answer into edges parent -> child; several shapes are accepted because the API is young.
function lineageEdges(self, body) {
  const edges = [];
  const add = (from, to, rel) => edges.push({ from: nodeRef(from), to: nodeRef(to), rel: rel || "" });
  if (Array.isArray(body)) body.forEach(e => add(e.parent ?? e.source ?? e.from, e.child ?? e.target ?? e.to ?? self, e.relation));
  else if (body && typeof body === "object") {
    (body.edges || []).forEach(e => add(e.parent ?? e.source ?? e.from, e.child ?? e.target ?? e.to, e.relation));
    (body.parents || body.ancestors || body.sources || []).forEach(p => add(p.version_ref ?? p.parent ?? p, p.child ?? self, p.relation));
    (body.children || body.descendants || []).forEach(c => add(c.parent ?? self, c.version_ref ?? c.child ?? c, c.relation));
  }
  return edges;
}

// Layered SVG graph: ancestors to the left, this version in the middle, descendants to the right.
function lineageGraph(self, body) {
  const edges = lineageEdges(self, body);
  const depth = new Map([[self, 0]]);
  for (let changed = true, guard = 0; changed && guard < 50; guard++) {
    changed = false;
    for (const e of edges) {
      if (depth.has(e.to) && !depth.has(e.from)) { depth.set(e.from, depth.get(e.to) - 1); changed = true; }
      if (depth.has(e.from) && !depth.has(e.to)) { depth.set(e.to, depth.get(e.from) + 1); changed = true; }
    }
  }
  edges.forEach(e => { if (!depth.has(e.from)) depth.set(e.from, -1); if (!depth.has(e.to)) depth.set(e.to, 0); });
  const cols = new Map();
  for (const [n, d] of depth) { if (!cols.has(d)) cols.set(d, []); cols.get(d).push(n); }
  const ds = [...cols.keys()].sort((a, b) => a - b);
  const NW = 190, NH = 28, GX = 120, GY = 16;
  const rows = Math.max(...[...cols.values()].map(c => c.length));
  const W = ds.length * NW + (ds.length - 1) * GX + 20, H = rows * (NH + GY) + 20;
  const pos = new Map();
  ds.forEach((d, ci) => cols.get(d).forEach((n, ri) => pos.set(n, [10 + ci * (NW + GX), 10 + ri * (NH + GY) + (rows - cols.get(d).length) * (NH + GY) / 2])));
  const lines = edges.map(e => {
    const [x1, y1] = pos.get(e.from), [x2, y2] = pos.get(e.to);
    const a = [x1 + NW, y1 + NH / 2], b = [x2, y2 + NH / 2];
    return `<path class="edge" data-relation="${esc(e.rel)}" d="M${a[0]},${a[1]} C${a[0] + GX / 2},${a[1]} ${b[0] - GX / 2},${b[1]} ${b[0] - 2},${b[1]}"/>
      <text class="edge-label" x="${(a[0] + b[0]) / 2}" y="${(a[1] + b[1]) / 2 - 4}" text-anchor="middle">${esc(e.rel)}</text>`;
  });
  const nodes = [...pos].map(([n, [x, y]]) => {
    const m = n.match(/^([^/@ ]+)\/([^/@ ]+)@(.+)$/);
    const label = `<rect width="${NW}" height="${NH}" rx="6"/><text x="${NW / 2}" y="${NH / 2 + 4}" text-anchor="middle">${esc(n.length > 30 ? n.slice(0, 29) + "…" : n)}</text>`;
    const inner = m && n !== self ? `<a href="#/adapters/${esc(m[1])}/${esc(m[2])}@${esc(m[3])}">${label}</a>` : label;
    return `<g class="node${n === self ? " self" : ""}" data-node="${esc(n)}" transform="translate(${x},${y})"><title>${esc(n)}</title>${inner}</g>`;
  });
  return `<svg id="lineage-graph" width="${W}" height="${H}" data-edges="${edges.length}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#9aa3b1"/></marker></defs>
    ${lines.join("")}${nodes.join("")}</svg>${edges.length ? "" : `<p class="muted">no lineage: uploaded directly</p>`}`;
}

async function viewBases(root) {
  const bases = items(await api("/bases"));
  root.innerHTML = `<h1>Bases</h1><table id="bases"><thead><tr><th>name</th><th>architecture</th><th>aliases</th><th>modules</th><th></th></tr></thead><tbody>
    ${bases.map(b => `<tr data-base="${esc(b.name)}"><td>${esc(b.name)}</td><td>${esc(b.architecture || "")}</td><td>${esc((b.aliases || []).join(", "))}</td>
      <td>${esc(Object.keys(b.modules || b.module_shapes || {}).length || "")}</td><td><a href="#/adapters?base=${encodeURIComponent(b.name)}">adapters</a></td></tr>`).join("") ||
      `<tr><td colspan="5" class="muted">no bases</td></tr>`}</tbody></table>`;
}

async function viewDatasets(root) {
  const list = items(await api("/datasets"));
  root.innerHTML = `<h1>Datasets</h1><table id="datasets"><thead><tr><th>dataset</th><th>latest</th><th>description</th></tr></thead><tbody>
    ${list.map(d => `<tr><td>${esc(d.namespace)}/${esc(d.name)}</td><td>${esc(d.latest_version ?? d.latest ?? "")}</td><td>${esc(d.description || "")}</td></tr>`).join("") ||
      `<tr><td colspan="3" class="muted">no datasets</td></tr>`}</tbody></table>`;
}

async function viewNewJob(root) {
  const [bases, adapters, datasets] = await Promise.all([
    api("/bases").then(items), api("/adapters").then(items), api("/datasets").then(items).catch(() => [])]);
  root.innerHTML = `<h1>New job</h1><form class="job card" id="job-form">
    <label for="kind">kind</label><select id="kind" name="kind"><option value="train">train</option><option value="merge">merge</option></select>
    <div id="train-fields">
      <label for="base">base</label><select id="base" name="base">${bases.map(b => `<option>${esc(b.name)}</option>`).join("")}</select>
      <label for="source">training data: a built-in task or a dataset version</label>
      <select id="source" name="source"><option value="task">built-in task</option>${datasets.map(d =>
        `<option value="dataset:${esc(d.namespace)}/${esc(d.name)}@${esc(d.latest_version ?? "latest")}">dataset ${esc(d.namespace)}/${esc(d.name)}</option>`).join("")}</select>
      <label for="task">task</label><input id="task" name="task" value="builtin:boolean_expressions?n=64&seed=0">
      <div class="row"><div><label for="steps">steps</label><input id="steps" name="steps" type="number" min="1" value="20"></div>
        <div><label for="rank">rank</label><input id="rank" name="rank" type="number" min="1" value="4"></div>
        <div><label for="lr">learning rate</label><input id="lr" name="lr" type="number" step="any" value="0.001"></div>
        <div><label for="batch_size">batch size</label><input id="batch_size" name="batch_size" type="number" min="1" value="4"></div></div>
      <div class="row"><div><label for="seed">seed</label><input id="seed" name="seed" type="number" value="0"></div></div>
    </div>
    <div id="merge-fields" hidden>
      <label>adapters to merge (version or tag)</label><div id="merge-inputs">${adapters.map(a =>
        `<div class="pick"><input type="checkbox" value="${esc(a.namespace)}/${esc(a.name)}" id="pick-${esc(a.namespace)}-${esc(a.name)}">
         <label for="pick-${esc(a.namespace)}-${esc(a.name)}">${esc(a.namespace)}/${esc(a.name)}</label> @ <input class="ref" value="${esc(a.latest ?? "latest")}"></div>`).join("") ||
        "<p class='muted'>no adapters yet</p>"}</div>
      <div class="row"><div><label for="method">method</label><select id="method" name="method">${MERGE_METHODS.map(m => `<option>${m}</option>`).join("")}</select></div>
        <div><label for="merge-rank">rank (k)</label><input id="merge-rank" type="number" min="1" value="8"></div>
        <div><label for="weights">weights (comma separated, optional)</label><input id="weights"></div>
        <div><label for="density">density (ties/dare)</label><input id="density" type="number" step="any" placeholder="0.5"></div></div>
    </div>
    <label for="output">output adapter (namespace/name)</label><input id="output" name="output" placeholder="me/my-adapter" required>
    <p><button id="submit-job" type="submit">Submit</button></p></form>`;
  const $ = s => root.querySelector(s);
  const sync = () => { const merge = $("#kind").value === "merge"; $("#merge-fields").hidden = !merge; $("#train-fields").hidden = merge;
    $("#task").disabled = $("#source").value !== "task"; };
  $("#kind").onchange = sync; $("#source").onchange = sync; sync();
  $("#job-form").onsubmit = async e => {
    e.preventDefault();
    const num = s => Number($(s).value);
    let body;
    if ($("#kind").value === "train") {
      const params = { base: $("#base").value, steps: num("#steps"), rank: num("#rank"), lr: num("#lr"), batch_size: num("#batch_size"), seed: num("#seed") };
      const src = $("#source").value;
      if (src === "task") params.task = $("#task").value; else params.dataset = src.slice("dataset:".length);
      body = { kind: "train", inputs: [], params, output: $("#output").value };
    } else {
      const inputs = [...root.querySelectorAll("#merge-inputs .pick")].filter(p => p.querySelector("input[type=checkbox]").checked)
        .map(p => `${p.querySelector("input[type=checkbox]").value}@${p.querySelector("input.ref").value}`);
      if (inputs.length < 2) { flash("pick at least two adapters to merge"); return; }
      const params = { method: $("#method").value, rank: num("#merge-rank") };
      if ($("#weights").value.trim()) params.weights = $("#weights").value.split(",").map(Number);
      if ($("#density").value) params.density = num("#density");
      body = { kind: "merge", inputs, params, output: $("#output").value };
    }
    try {
      const job = await api("/jobs", { method: "POST", json: body });
      location.hash = "#/jobs/" + job.id;
    } catch (err) { flash(err.message); }
  };
}

// ---------- routing ----------

const routes = [
  [/^#\/jobs\/([^/?]+)$/, viewJob],
  [/^#\/adapters\/([^/?]+)\/([^/?]+)$/, viewAdapter],
  [/^#\/adapters(?:\?.*)?$/, viewAdapters],
  [/^#\/bases$/, viewBases],
  [/^#\/datasets$/, viewDatasets],
  [/^#\/new$/, viewNewJob],
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
