// Jobs: the list (filters and page in the URL, so a filtered view can be linked) and one job's page, kept live by
// its event stream.
//
// Live job updates: the events endpoint is read with fetch() and a ReadableStream parsing Server-Sent Events, not
// with EventSource, because EventSource cannot send the Authorization header and a token in the URL would end up in
// access logs. When streaming fails (proxy buffering, older hub) the page falls back to polling `?after=`.
"use strict";

const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
const JOBS_PER_PAGE = 25;

// #/jobs?state=failed&kind=train&at=C1,C2. The API filters by state and kind and pages by cursor (each answer's
// next_cursor starts the next, older page exactly where this one ended, skipping what the caller may not see);
// `at` holds the cursors of the pages walked so far, so "newer" drops the last one and a page can be linked.
async function viewJobs(root) {
  const query = hashQuery();
  const state = JOB_STATES.includes(query.get("state")) ? query.get("state") : "";
  const alive = viewAlive();
  const kinds = await jobKinds();
  if (!alive()) return;
  const kind = kinds[query.get("kind")] ? query.get("kind") : "";
  const at = (query.get("at") || "").split(",").filter(c => /^[A-Za-z0-9_-]+$/.test(c));
  const page = at.length + 1;
  const option = (value, chosen) => `<option value="${esc(value)}"${value === chosen ? " selected" : ""}>${esc(value)}</option>`;
  root.innerHTML = `<h1>Jobs</h1>
    <form id="job-filters" class="filters">
      <label>state <select id="filter-state" name="state"><option value="">any</option>${JOB_STATES.map(s => option(s, state)).join("")}</select></label>
      <label>kind <select id="filter-kind" name="kind"><option value="">any</option>${Object.keys(kinds).sort().map(k => option(k, kind)).join("")}</select></label>
      <a href="#/new">New job</a></form>
    <table id="jobs" class="list"><colgroup><col class="c-id"><col class="c-kind"><col class="c-state"><col class="c-progress">
    <col class="c-stage"><col class="c-duration"><col class="c-created"><col></colgroup>
    <thead><tr><th>id</th><th>kind</th><th>state</th><th>progress</th><th>stage</th><th>duration</th>
    <th>created</th><th>results</th></tr></thead><tbody></tbody></table>
    <p class="pager"><a id="page-prev" hidden>← newer</a> <span id="page-no" class="muted"></span> <a id="page-next" hidden>older →</a></p>`;
  const link = changes => {
    const q = Object.entries({ state, kind, at: at.join(","), ...changes });
    const kept = new URLSearchParams(q.filter(([, v]) => v));
    return "#/jobs" + (kept.toString() ? "?" + kept : "").replaceAll("%2C", ",");
  };
  root.querySelector("#filter-state").onchange = e => { location.hash = link({ state: e.target.value, at: "" }); };
  root.querySelector("#filter-kind").onchange = e => { location.hash = link({ kind: e.target.value, at: "" }); };

  async function refresh() {
    const q = new URLSearchParams([["limit", String(JOBS_PER_PAGE)], ...(at.length ? [["cursor", at[at.length - 1]]] : []),
      ...(state ? [["state", state]] : []), ...(kind ? [["kind", kind]] : [])]);
    const answer = await api("/jobs?" + q);
    if (!alive()) return;
    const shown = items(answer);
    root.querySelector("tbody").innerHTML = shown.map(j => {
      const made = kinds[j.kind] ? outputObject(kinds[j.kind]) : "adapter";
      return `<tr data-job="${esc(j.id)}" data-state="${esc(j.state)}" data-kind="${esc(j.kind)}">
      <td><a href="#/jobs/${esc(j.id)}" title="${esc(j.id)}">${esc(shortId(j.id))}</a></td><td>${esc(j.kind)}</td>
      <td>${stateBadge(j.state)}</td><td>${progressBar(j)}</td><td>${esc(j.stage || "")}</td><td>${duration(j)}</td>
      <td>${when(j.created_at)}</td><td class="refs">${resultLinks(j, made)}</td></tr>`;
    }).join("") || `<tr><td colspan="8" class="muted">no ${state ? esc(state) + " " : ""}${kind ? esc(kind) + " " : ""}jobs${page > 1 ? " on this page" : ""}</td></tr>`;
    const prev = root.querySelector("#page-prev"), next = root.querySelector("#page-next");
    prev.hidden = page === 1; prev.href = link({ at: at.slice(0, -1).join(",") });
    next.hidden = !answer.next_cursor; next.href = link({ at: [...at, answer.next_cursor || ""].join(",") });
    root.querySelector("#page-no").textContent = page > 1 || !next.hidden ? `page ${page}` : "";
  }
  await refresh();
  every(1500, () => refresh().catch(() => {}));
}

// What a kind publishes: an adapter, dataset or generator version, or (evaluate) metrics onto its input.
function outputObject(kind) {
  return ["adapter", "dataset", "generator"].includes(kind.output) ? kind.output : kind.inputs.object;
}

// A job's result refs, each marked with its kind (`result_objects`): a transfer_kit job publishes an adapter and a
// dataset of one name. A hub that does not say falls back to the kind's output.
function resultLinks(job, made) {
  const objects = job.result_objects || [];
  return (job.results || []).map((r, i) => refLink(r, objects[i] || made)).join(" ");
}

async function viewJob(root, id) {
  root.innerHTML = `<h1>Job <span id="job-id">${esc(id)}</span></h1>
    <div class="card"><div id="job-head"></div></div>
    <div class="grid2"><div class="card" id="curves-card" hidden><h2>Curves</h2><div id="curves"></div><div id="last-values"></div></div>
    <div class="card" id="params-card"><h2>Params</h2><div id="params"></div></div></div>
    <div class="card" id="result-card" hidden><h2>Result</h2><div id="result"></div></div>
    <div class="card"><h2>Log</h2><pre class="log" id="log"></pre></div>`;
  const alive = viewAlive();
  const kinds = await jobKinds();
  if (!alive()) return;
  const series = new Map();  // metric name -> [[step, value]]
  const log = root.querySelector("#log");
  let job = null, steps = null, lastStage = null;  // steps: {step, total, stage} of the newest progress event

  function paramValue(kind, name, value) {
    const ref = kind && kind.references[name];
    if (ref && ref.object !== "base" && typeof value === "string") return refLink(value, ref.object);
    return isScalar(value) ? esc(value ?? "—") : Array.isArray(value) && value.every(isScalar) ? esc(value.join(", ")) : folded(value);
  }

  // step N of M from the newest progress event of the current stage; the ETA from the overall progress so far.
  function stepText() {
    if (!job || job.state !== "running") return "";
    const parts = [];
    if (steps && steps.stage === job.stage && steps.total) parts.push(`step ${steps.step} of ${steps.total}`);
    const elapsed = (Date.now() - new Date(job.started_at)) / 1000, p = Number(job.progress) || 0;
    if (job.started_at && p >= 0.02 && p < 1) parts.push("ETA " + seconds(elapsed * (1 - p) / p));
    return parts.join(" · ");
  }

  async function refreshJob() {
    const fresh = await api("/jobs/" + encodeURIComponent(id));
    if (!alive()) return;
    job = fresh;
    const kind = kinds[job.kind];
    const made = kind ? outputObject(kind) : "adapter";
    const terminal = TERMINAL.has(job.state);
    const results = resultLinks(job, made);
    root.querySelector("#job-head").innerHTML = `
      <p class="head-line">${stateBadge(job.state)} <b>${esc(job.kind)}</b> <span class="muted">stage</span> <span id="stage">${esc(job.stage || "")}</span>
      <span id="job-steps" class="steps">${esc(stepText())}</span>
      <span class="muted">attempts</span> ${esc(job.attempts)} <span class="muted">worker</span> ${job.worker
        ? `<a id="job-worker" href="#/workers">${esc(job.worker)}</a> <span class="muted">on</span> <span id="job-device">${esc(job.device || "?")}</span>`
        : "<span class='muted'>none yet</span>"}
      <span class="muted">duration</span> ${duration(job)}</p>
      ${progressBar(job, true)}
      <dl class="kv" style="margin-top:10px">
        <dt>inputs</dt><dd>${job.inputs.map(r => refLink(r, kind ? kind.inputs.object : "adapter")).join(" ") || "none"}</dd>
        ${job.output ? `<dt>output</dt><dd>${esc(job.output.namespace + "/" + job.output.name)}</dd>` : ""}
        ${results ? `<dt>results</dt><dd id="results">${results}</dd>`
          : terminal ? "" : `<dt>results</dt><dd id="results"><span class='muted'>none yet</span></dd>`}
        <dt>created</dt><dd>${when(job.created_at)}</dd>${job.started_at ? `<dt>started</dt><dd>${when(job.started_at)}</dd>` : ""}
        ${job.finished_at ? `<dt>${esc(job.state === "succeeded" ? "finished" : job.state)}</dt><dd>${when(job.finished_at)}</dd>` : ""}
        ${job.error ? `<dt>error</dt><dd class="error" id="job-error">${esc(job.error.type)}: ${esc(job.error.message)}</dd>` : ""}
      </dl>
      <p>${terminal ? `<button id="retry" class="secondary">Retry</button>` : `<button id="cancel" class="secondary danger">Cancel…</button>`}</p>`;
    const cancel = root.querySelector("#cancel"), retry = root.querySelector("#retry");
    if (cancel) cancel.onclick = () => {
      if (!window.confirm(`Cancel ${job.kind} job ${shortId(id)}? Its work so far is lost.`)) return;
      api(`/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" }).then(refreshJob).catch(e => flash(e.message));
    };
    if (retry) retry.onclick = () => api(`/jobs/${encodeURIComponent(id)}/retry`, { method: "POST" }).then(refreshJob).catch(e => flash(e.message));
    const params = Object.entries(job.params);
    root.querySelector("#params").innerHTML = params.length
      ? `<dl class="kv">${params.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${paramValue(kind, k, v)}</dd>`).join("")}</dl>` : "<p class='muted'>none</p>";
    if (job.result) {
      root.querySelector("#result-card").hidden = false;
      root.querySelector("#result").innerHTML = resultView(job.result);
    }
  }

  // Metric events become curves (two points or more), not log lines. The panel appears only once there is a curve:
  // a job that reports one number (evaluate's score) shows it in its result, not in an empty chart.
  function drawMetrics() {
    const curves = [...series].filter(([n, pts]) => n !== "lr" && pts.length > 1);
    const single = curves.length ? [...series].filter(([n, pts]) => n !== "lr" && pts.length === 1) : [];
    root.querySelector("#curves-card").hidden = !curves.length;
    root.querySelector("#curves").innerHTML = curves.map(([n, pts]) =>
      `<div class="curve-box"><h3>${esc(n)}</h3>${lineChart(pts, n === "loss" ? "loss-chart" : chartId(n))}</div>`).join("");
    root.querySelector("#last-values").innerHTML = single.length ? kvTable(Object.fromEntries(single.map(([n, pts]) => [n, pts[0][1]]))) : "";
  }

  function onEvent(ev) {  // {seq, at, type: state|progress|log|metric|error, data}
    if (!alive()) return;
    const d = ev.data;
    let line = null;
    if (ev.type === "metric") {
      if (!series.has(d.name)) series.set(d.name, []);
      series.get(d.name).push([d.step ?? series.get(d.name).length, d.value]);
      drawMetrics();
    } else if (ev.type === "progress") {
      if (d.total) steps = { step: d.step, total: d.total, stage: d.stage };
      if (d.stage && d.stage !== lastStage) line = `stage: ${d.stage}`;  // one line per stage, not per step
      lastStage = d.stage || lastStage;
      const box = root.querySelector("#job-steps");
      if (box) box.textContent = stepText();
    } else if (ev.type === "state") line = d.state + (d.results ? " " + d.results.join(" ") : "");
    else if (ev.type === "error") line = `${d.type}: ${d.message}\n${d.traceback || ""}`;
    else line = d.message;
    if (line !== null) {
      log.textContent += `${new Date(ev.at).toLocaleTimeString()} [${ev.type}] ${line}\n`;
      log.scrollTop = log.scrollHeight;
    }
    if (ev.type === "state") refreshJob().catch(() => {});
  }

  await refreshJob();
  followEvents(id, onEvent, () => job && TERMINAL.has(job.state));
  every(1000, () => { if (job && !TERMINAL.has(job.state)) refreshJob().catch(() => {}); });
}

// A job's result data: completions (infer) as a table, scores (evaluate) as a table of names and values.
function resultView(result) {
  if (Array.isArray(result.completions)) {
    const experts = result.route_weights ? (result.experts || []).map((e, k) => e || `expert ${k}`) : [];
    return `<table id="completions"><thead><tr><th>prompt</th><th>completion</th>${result.gate_weights ? "<th>gate weight</th>" : ""}
      ${experts.map(e => `<th>routed to ${esc(e)}</th>`).join("")}</tr></thead><tbody>
      ${result.completions.map((c, i) => `<tr><td>${esc(result.prompts ? result.prompts[i] : "")}</td><td class="completion">${esc(c)}</td>
        ${result.gate_weights ? `<td class="gate">${Number(result.gate_weights[i]).toFixed(3)}</td>` : ""}
        ${experts.map((_, k) => `<td class="gate route-weight">${Number(result.route_weights[i][k]).toFixed(3)}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  return kvTable(result, "result-table");
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
