// A version's page, read like a model card: what it is and where it came from first (base, the job that made it and
// from what, tags), how to use it, its metrics as a table and its curves as charts, then one card per method report
// (merge, transfer kit, transfer, unlearning, generator, generated adapter). The PEFT config and anything nested that
// has no card of its own stay folded: the reader opens them.
"use strict";

// metrics keys that are a method's report, drawn as their own card rather than in the metrics table
const REPORTS = ["merge", "kit", "transfer", "unlearn", "generator", "generate"];

// Adapters, datasets and generators are versioned the same way; one list view and one page serve all three.
async function viewArtifact(root, plural, ns, nameRef) {
  const alive = viewAlive();
  const object = plural.slice(0, -1);
  const [name, wanted] = nameRef.split("@");
  const base = `/${plural}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const [artifact, versionsBody] = await Promise.all([api(base), api(base + "/versions")]);
  const versions = items(versionsBody).slice().sort((a, b) => b.number - a.number);
  const newest = versions.find(v => !v.yanked) || versions[0];
  const v = await api(`${base}/versions/${encodeURIComponent(wanted || (newest ? newest.number : "latest"))}`);
  if (!alive()) return;
  const page = `#/${plural}/${esc(ns)}/${esc(name)}`;
  root.innerHTML = `<h1 class="title"><span>${esc(ns)}/${esc(name)}</span> <span class="object">${esc(object)}</span>
      <span id="version-title" class="version-no">Version ${esc(v.number)}</span>${v.yanked ? ` <span class="state state-failed" id="yanked">yanked</span>` : ""}</h1>
    <div class="page">
      <div class="main-col">
        <section class="card" id="summary"><h2>Summary</h2>${summaryList(artifact, v, object)}</section>
        <section class="card" id="use-it"><h2>Use it</h2><div id="use-it-body"></div></section>
        <section class="card" id="metrics-card"><h2>Metrics</h2>${metricsView(v.metrics)}</section>
        <div id="reports">${REPORTS.map(key => v.metrics[key] ? reportCard(key, v.metrics[key], v, object) : "").join("")}</div>
        <div id="extras"></div>
        <section class="card"><h2>Lineage</h2><div id="lineage"><p class="muted">loading lineage…</p></div></section>
      </div>
      <aside class="side-col">
        <section class="card"><h2>Versions</h2><table id="versions" class="list"><tbody>
          ${versions.map(o => `<tr data-version="${esc(o.number)}"${o.number === v.number ? ' class="current"' : ""}>
            <td><a href="${page}@${esc(o.number)}">v${esc(o.number)}</a> ${o.tags.map(t => `<span class="tag">${esc(t)}</span>`).join("")}
              ${o.yanked ? "<span class='muted'>yanked</span>" : ""}</td><td class="muted">${esc(new Date(o.created_at).toLocaleDateString())}</td></tr>`).join("")}
        </tbody></table></section>
        <section class="card"><h2>Files</h2><table id="files" class="list"><tbody>${v.files.map(f => `<tr>
          <td class="file"><a download href="${API}${base}/versions/${esc(v.number)}/files/${encodeURIComponent(f.name)}">${esc(f.name)}</a></td>
          <td class="num" title="sha256 ${esc(f.sha256)}">${bytesText(f.size)}</td></tr>`).join("")}</tbody></table></section>
        ${v.peft_config ? `<section class="card" id="config-card"><h2>Config</h2><details id="peft-config"><summary>${esc(configLine(v.peft_config))}</summary>
          <pre class="json">${esc(JSON.stringify(v.peft_config, null, 1))}</pre></details></section>` : ""}
      </aside>
    </div>`;
  for (const extra of versionExtras) {
    const html = extra(object, v);
    if (html) root.querySelector("#extras").insertAdjacentHTML("beforeend", html);
  }
  versionHooks.forEach(hook => hook(root, object, v));
  // what comes from other requests fills in afterwards: a failure leaves the rest of the card readable
  const fill = (selector, html) => { const box = alive() && root.querySelector(selector); if (box) box.innerHTML = html; };
  await Promise.all([
    madeBy(v).then(html => fill("#made-by", html), () => {}),
    useIt(object, v).then(html => fill("#use-it-body", html)),
    api(`${base}/versions/${encodeURIComponent(v.number)}/lineage`)
      .then(lineage => lineageSvg({ version: v.ref, object, base: v.base }, lineage))
      .then(html => fill("#lineage", html), e => fill("#lineage", `<p class="muted">${esc(e.message)}</p>`)),
  ]);
}

// Panels a method adds to a version page: versionExtras return HTML (or ""), versionHooks wire it up.
const versionExtras = [];
const versionHooks = [];

function bytesText(n) {
  return n >= 1e6 ? (n / 1e6).toFixed(2) + " MB" : n >= 1e3 ? (n / 1e3).toFixed(1) + " kB" : n + " B";
}

function configLine(c) {
  const targets = Array.isArray(c.target_modules) ? c.target_modules.length + " target modules"
    : c.target_modules ? "targets " + c.target_modules : "";
  return [c.peft_type || "PEFT", c.r != null ? "r " + c.r : "", c.lora_alpha != null ? "alpha " + c.lora_alpha : "", targets]
    .filter(Boolean).join(" · ");
}

function summaryList(artifact, v, object) {
  const size = v.files.reduce((s, f) => s + f.size, 0);
  return `<dl class="kv">
    ${v.base ? `<dt>base</dt><dd id="summary-base"><a href="#/bases">${esc(v.base)}</a></dd>` : ""}
    <dt>made by</dt><dd id="made-by">${v.job_id ? `<a href="#/jobs/${esc(v.job_id)}">job ${esc(shortId(v.job_id))}</a>` : `upload by ${esc(v.created_by || "?")}`}</dd>
    <dt>tags</dt><dd id="summary-tags">${v.tags.length ? v.tags.map(t => `<span class="tag">${esc(t)}</span>`).join("") : "<span class='muted'>none</span>"}</dd>
    ${artifact.description ? `<dt>description</dt><dd>${esc(artifact.description)}</dd>` : ""}
    ${artifact.task_tags && artifact.task_tags.length ? `<dt>tasks</dt><dd>${esc(artifact.task_tags.join(", "))}</dd>` : ""}
    ${v.peft_config ? `<dt>adapter</dt><dd>${esc(configLine(v.peft_config))}</dd>` : ""}
    <dt>created</dt><dd>${when(v.created_at)}${v.created_by && !v.job_id ? ` <span class="muted">by ${esc(v.created_by)}</span>` : ""}</dd>
    <dt>size</dt><dd>${bytesText(size)} in ${v.files.length} file${v.files.length === 1 ? "" : "s"}</dd></dl>`;
}

// "train job 1a2b3c4d5e6f from builtin:…": the job's kind, its inputs and the registry objects its params name.
async function madeBy(v) {
  if (!v.job_id) return `upload by ${esc(v.created_by || "?")}`;
  const [job, kinds] = await Promise.all([api("/jobs/" + encodeURIComponent(v.job_id)), jobKinds()]);
  const kind = kinds[job.kind];
  const from = job.inputs.map(r => refLink(r, kind ? kind.inputs.object : "adapter"));
  const refs = kind ? kind.references : {};
  for (const [param, value] of Object.entries(job.params)) {  // registry objects and built-in tasks the params name
    const ref = refs[param];
    if (typeof value !== "string" || !value || !(ref || value.startsWith("builtin:"))) continue;
    from.push(`<span class="muted">${esc(param)}</span> ${ref && ref.object !== "base" ? refLink(value, ref.object) : esc(value)}`);
  }
  return `<b>${esc(job.kind)}</b> <a href="#/jobs/${esc(job.id)}">job ${esc(shortId(job.id))}</a>${from.length ? " from " + from.join(", ") : ""}`;
}

// How to get it: PEFT through the hub's Hugging Face paths, and the CLI. The hub's own address is filled in.
async function useIt(object, v) {
  const origin = location.origin;
  const pull = `adaptarium ${object === "adapter" ? "" : object + "s "}pull ${v.ref} ./${v.name}`;  // datasets|generators pull
  if (object !== "adapter") {
    const first = v.files[0] ? v.files[0].name : "";
    return `<pre class="snippet" id="use-cli">export ADAPTARIUM_URL=${esc(origin)} ADAPTARIUM_TOKEN=…   # your token
${esc(pull)}
curl -H "Authorization: Bearer $ADAPTARIUM_TOKEN" -O $ADAPTARIUM_URL/api/v1/${esc(object)}s/${esc(v.namespace)}/${esc(v.name)}/versions/${esc(v.number)}/files/${esc(first)}</pre>`;
  }
  let load = `base_model = ...  # the weights of base ${v.base}`;
  try {
    const b = await api("/bases/" + encodeURIComponent(v.base));
    if (b.aliases.length) load = `base_model = AutoModelForCausalLM.from_pretrained("${b.aliases[0]}")`;
    else if (b.source) load = `from lora.bases import load_base\nbase_model, tokenizer = load_base("${b.source}")  # base ${v.base}`;
  } catch (_) {}
  const python = `import os
os.environ["HF_ENDPOINT"] = "${origin}"  # before importing huggingface_hub
os.environ["HF_TOKEN"] = "…"  # your Adaptarium token, for a namespace that is not public
from transformers import AutoModelForCausalLM
from peft import PeftModel
${load}
model = PeftModel.from_pretrained(base_model, "${v.namespace}/${v.name}", revision="v${v.number}")`;
  return `<pre class="snippet" id="use-python">${esc(python)}</pre>
    <pre class="snippet" id="use-cli">export ADAPTARIUM_URL=${esc(origin)} ADAPTARIUM_TOKEN=…   # your token
${esc(pull)}</pre>`;
}

// The metrics that are not a method's report: numbers in a table (long keys wrap), curves as charts.
function metricsView(metrics) {
  const plain = Object.fromEntries(Object.entries(metrics).filter(([k]) => !REPORTS.includes(k)));
  const drawn = ([k, x]) => isCurve(x) && SERIES.test(k);
  const curves = Object.entries(plain).filter(drawn);
  const rest = Object.fromEntries(Object.entries(plain).filter(e => !drawn(e)));
  if (!curves.length && !Object.keys(rest).length) {
    return `<p class="muted">none${REPORTS.some(k => metrics[k]) ? " besides the report below" : ""}</p>`;
  }
  return (Object.keys(rest).length ? kvTable(rest, "metrics") : "") + curveBoxes(curves, "metric");
}

function isCurve(x) { return Array.isArray(x) && x.length >= 2 && x.every(y => typeof y === "number"); }

// numbers over steps or epochs are drawn; other lists of numbers (scores per held-out example) are not a curve
const SERIES = /loss|curve/i;

function curveBoxes(curves, prefix) {
  return curves.length ? `<div class="curves">${curves.map(([k, ys]) => `<div class="curve-box"><h3>${esc(k)}</h3>
    ${lineChart(ys.map((y, i) => [i + 1, y]), chartId(prefix + "-" + k))}</div>`).join("")}</div>` : "";
}

// A table of rows that are flat objects (overlap per request, epochs, calibration), folded when long.
function rowsTable(rows, id = "") {
  const cols = [...new Set(rows.flatMap(r => Object.keys(r)))].slice(0, 8);
  const table = `<table class="list rows"${id ? ` id="${esc(id)}"` : ""}><thead><tr>${cols.map(c => `<th>${esc(c)}</th>`).join("")}</tr></thead>
    <tbody>${rows.map(r => `<tr>${cols.map(c => `<td>${esc(fmt(r[c]))}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  return rows.length > 12 ? `<details><summary>${rows.length} rows</summary>${table}</details>` : table;
}

function isRows(x) { return Array.isArray(x) && x.length > 0 && x.every(r => r && typeof r === "object" && !Array.isArray(r) && Object.values(r).every(isScalar)); }

// Whatever a report holds beyond its headline: scalars (and one level of scalar objects, as dotted keys) in a table,
// numeric series as charts, lists of flat rows as tables, anything deeper folded.
function reportRest(report, skip, prefix) {
  const scalars = {}, curves = [], tables = [], deep = {};
  for (const [k, x] of Object.entries(report)) {
    if (skip.includes(k)) continue;
    if (isScalar(x)) scalars[k] = x;
    else if (isCurve(x) && x.length >= 3 && SERIES.test(k)) curves.push([k, x]);
    else if (Array.isArray(x) && x.every(isScalar) && x.length <= 12) scalars[k] = x;
    else if (isRows(x)) tables.push([k, x]);
    else if (x && typeof x === "object" && !Array.isArray(x) && Object.values(x).every(isScalar)) {
      for (const [k2, y] of Object.entries(x)) scalars[`${k}.${k2}`] = y;
    } else deep[k] = x;
  }
  return curveBoxes(curves, prefix) + tables.map(([k, rows]) => `<h3>${esc(k)}</h3>${rowsTable(rows, prefix + "-" + k)}`).join("") +
    (Object.keys(scalars).length ? `<h3>details</h3>${kvTable(scalars)}` : "") +
    (Object.keys(deep).length ? `<h3>more</h3>${kvTable(deep)}` : "");
}

function stat(label, value, id = "") {
  return `<div class="stat"${id ? ` id="${esc(id)}"` : ""}><div class="stat-value">${value}</div><div class="stat-label">${esc(label)}</div></div>`;
}

function share(x) { return x == null ? "—" : (100 * x).toFixed(1) + " %"; }
function num(x, digits = 4) { return x == null ? "—" : esc(fmt(typeof x === "number" ? Number(x.toPrecision(digits)) : x)); }

// One card per method report: a headline of the numbers that answer "did it work", then the rest of the report.
function reportCard(key, r, v, object) {
  const card = REPORT_CARDS[key];
  const { id, title, stats, body, skip } = card(r, v, object);
  // what the method warns about (a discriminator at chance, ...) is said up front, not left in the details
  const warned = Object.keys(r).filter(k => /warning/i.test(k) && r[k] && (typeof r[k] === "string" || Array.isArray(r[k]) && r[k].every(isScalar)));
  const warnings = warned.flatMap(k => Array.isArray(r[k]) ? r[k] : [r[k]]);
  return `<section class="card report" id="${esc(id)}" data-report="${esc(key)}"><h2>${title}</h2>
    ${warnings.map(w => `<p class="warning">${esc(w)}</p>`).join("")}
    ${stats.length ? `<div class="stats">${stats.join("")}</div>` : ""}${body || ""}${reportRest(r, [...(skip || []), ...warned], id)}</section>`;
}

const REPORT_CARDS = {
  // merge: coefficients (per-input weights, fitted or given) and LEGO's experts (cluster sizes per module)
  merge: r => {
    const cfg = r.config || {};
    const weights = r.coefficients || cfg.weights;
    const modules = Object.entries(r.modules || {});
    const experts = modules.filter(([, d]) => d && Array.isArray(d.cluster_sizes));
    const route = r.route;  // a routed merge: its experts are the inputs, each served to the inputs routed to it
    const accuracy = route && route.top1_accuracy_held_out;
    return {
      id: "merge-report", title: `Merge — ${esc(r.method || "?")}${route ? ` (${esc(route.router)} router)` : ""}`,
      stats: [stat("inputs", num(r.n_inputs)), stat("rank in → out", `${num(r.input_rank)} → ${num(r.output_rank)}`),
              stat("modules", num(r.n_modules)), ...(r.k != null ? [stat("experts per module (k)", num(r.k))] : []),
              stat("time", esc(seconds(r.time_s)))],
      body: route ? `<h3>experts</h3><table class="list" id="route-experts"><thead><tr><th>expert</th><th>source version</th>
          <th>router top-1 on its examples (held out)</th></tr></thead><tbody>${(route.sources || []).map((src, i) =>
          `<tr><th scope="row">${i}</th><td>${refLink(src)}</td><td>${accuracy ? share(accuracy[i]) : "— (not calibrated)"}</td></tr>`).join("")}</tbody></table>
        <p class="muted">infer and evaluate send each input to its expert (a soft mix when the router's top weight is below
        ${num(route.confidence, 2)}); plain PEFT loaders get the experts' cat merge.</p>
        ${Object.keys(cfg).length ? `<h3>config</h3>${kvTable(cfg)}` : ""}` :
        `<h3>coefficients</h3>${weights ? `<table class="list" id="merge-coefficients"><tbody>${weights.map((w, i) =>
          `<tr><th scope="row">input ${i + 1}</th><td>${num(w)}</td></tr>`).join("")}</tbody></table>` : "<p class='muted'>every input at weight 1</p>"}
        ${experts.length ? `<h3>experts (cluster sizes per module)</h3>${rowsTable(experts.map(([m, d]) => ({ module: m, sizes: d.cluster_sizes.join(" + ") })), "merge-experts")}` : ""}
        ${Object.keys(cfg).length ? `<h3>config</h3>${kvTable(cfg)}` : ""}`,
      skip: ["method", "n_inputs", "input_rank", "output_rank", "n_modules", "k", "time_s", "modules", "config", "coefficients",
             ...(route ? ["route"] : [])],
    };
  },
  // the transfer kit (on its discriminator version): how well the discriminator tells real inputs from synthetic
  kit: r => ({
    id: "kit-report", title: "Transfer kit — discriminator",
    stats: [stat("held-out accuracy", share(r.heldout_accuracy), "kit-accuracy"),
            stat("real accepted", share(r.heldout_real_accuracy)), stat("synthetic rejected", share(r.heldout_synthetic_accuracy)),
            stat("real / synthetic examples", `${num(r.real_size)} / ${num(r.synthetic_size)}`)],
    body: Array.isArray(r.synthetic_sample) && r.synthetic_sample.length
      ? `<details><summary>what the synthetic inputs look like (${r.synthetic_sample.length})</summary><ul class="samples">${r.synthetic_sample.map(s => `<li>${esc(typeof s === "string" ? s : JSON.stringify(s))}</li>`).join("")}</ul></details>` : "",
    skip: ["heldout_accuracy", "heldout_real_accuracy", "heldout_synthetic_accuracy", "real_size", "synthetic_size", "synthetic_sample"],
  }),
  // transfer: acceptance of the filter, its calibration, and the ablation numbers (MMD with and without filtering)
  transfer: r => {
    const ablation = ["data", "mmd_kind", "mmd_unfiltered_to_seeds", "mmd_filtered_to_seeds"].filter(k => k in r);
    return {
      id: "transfer-report", title: `Transfer — ${esc(r.source_base || "?")} → ${esc(r.target_base || "?")}`,
      stats: [stat("acceptance", share(r.acceptance_rate), "acceptance-rate"), stat("accepted / judged", `${num(r.accepted)} / ${num(r.candidates_judged)}`),
              stat("drawn (empty)", `${num(r.candidates_drawn)} (${num(r.candidates_empty)})`), stat("training examples", num(r.train_size)),
              stat("final loss", num(r.final_loss))],
      body: ablation.length ? `<h3>ablation</h3>${kvTable(Object.fromEntries(ablation.map(k => [k, r[k]])), "transfer-ablation")}` : "",
      skip: ["acceptance_rate", "accepted", "candidates_judged", "candidates_drawn", "candidates_empty", "train_size", "final_loss",
             "source_base", "target_base", ...ablation],
    };
  },
  // unlearning (O3): what was forgotten, how orthogonal it is to earlier requests, and the gate that routes inputs.
  // The gate is shown as the share of inputs it opens (≥ 0.9) and shuts (≤ 0.05), out-of-fold on held-out inputs:
  // a mean or an AUROC hides a gate that is half open for many inputs.
  unlearn: r => {
    const d = r.detector || {};
    const g = d.gate || {};
    // out-of-fold weights where there were enough held-out inputs to fold, else the in-sample ones
    const pick = w => w && (w.cross_validated && w.cross_validated.n ? w.cross_validated : w.in_sample);
    const forget = pick(g.held_out_forget), kept = pick(g.reference);
    const overlap = (r.overlap || []).map(o => ({ request: o.request + 1, "mean ‖A_k·A_tᵀ‖": o.mean_fro, "max ‖A_k·A_tᵀ‖": o.max_fro }));
    const dist = (name, w) => w && w.n ? { inputs: name, n: w.n, "open (≥ 0.9)": share(w.frac_open), "shut (≤ 0.05)": share(w.frac_closed),
      mean: w.mean, q05: w.quantiles.q05, median: w.quantiles.median, q95: w.quantiles.q95 } : null;
    const rows = [
      dist("held-out forget, out-of-fold", forget), dist("held-out forget, in-sample", (g.held_out_forget || {}).in_sample),
      dist("retained/reference, out-of-fold", kept), dist("retained/reference, in-sample", (g.reference || {}).in_sample),
      ...Object.entries(g.reference_by_source || {}).map(([k, w]) => dist(`reference: ${k}`, w)),
      dist("paper gate: held-out forget", (g.paper_gate || {}).held_out_forget), dist("paper gate: reference", (g.paper_gate || {}).reference),
    ].filter(Boolean);
    const gateStats = g.held_out_forget
      ? [stat("held-out forget inputs the gate opens", share(forget && forget.frac_open), "gate-forget"),
         stat("retained inputs it shuts exactly", share(kept && kept.frac_closed), "gate-retained")]
      : [stat("gate on forget inputs", num(d.rest_weight_mean, 3), "gate-forget"),
         stat("gate on retained inputs", num(d.reference_weight_mean, 3), "gate-retained")];
    return {
      id: "unlearn-report", title: `Unlearning — request ${esc(r.n_requests)}${g.gate ? ` (${esc(g.gate)} gate)` : ""}`,
      stats: [stat("forget examples", num(r.n_forget)), ...gateStats,
              stat("detector AUROC", d.auroc == null ? "—" : Number(d.auroc).toFixed(3), "auroc")],
      body: `<div class="curves"><div class="curve-box"><h3>forget loss</h3>${lineChart((r.losses || []).map((y, i) => [i + 1, y]), "unlearn-loss")}</div>
        <div class="curve-box"><h3>orthogonality loss</h3>${lineChart((r.orth_losses || []).map((y, i) => [i + 1, y]), "orth-loss")}</div></div>
        <h3>against earlier requests</h3>${overlap.length ? rowsTable(overlap, "overlap") : "<p class='muted'>first request: nothing to be orthogonal to</p>"}
        ${rows.length ? `<h3>gate weights</h3>${rowsTable(rows, "gate-distribution")}` : ""}
        <details><summary>gate calibration</summary>${kvTable(g.calibration || Object.fromEntries(["m1", "m2", "s", "n_used", "n_rest", "n_reference"].filter(k => k in d).map(k => [k, d[k]])), "gate-calibration")}</details>
        <p class="muted">The o3/ detectors hold encoder features of the forget set: share this version only with those who may read that data.</p>`,
      skip: ["n_requests", "n_forget", "losses", "orth_losses", "overlap", "detector"],
    };
  },
  // a generator (ICM-LoRA CVAE): the size it takes against its checkpoints, and its training curve
  generator: (g, v) => {
    const mb = b => b == null ? "—" : (b / 1e6).toFixed(2) + " MB";
    const curve = (g.epochs || []).map(e => [e.epoch, e.loss ?? e.recon]);
    return {
      id: "generator-report", title: "Generator",
      stats: [stat("size against its checkpoints", `<span id="size-ratio">${mb(g.generator_bytes)} against ${mb(g.checkpoint_bytes)} of checkpoints
                (${g.size_ratio == null ? "—" : (100 * g.size_ratio).toFixed(1) + " %"})</span>`),
              stat("members / checkpoints used", `${num(g.members)} / ${num(g.checkpoints_used)}`),
              stat("reconstruction left (posterior mean)", num(g.final_recon_posterior_mean, 3))],
      body: `<dl class="kv"><dt>condition</dt><dd>${esc(v.metrics.condition || g.condition || "")}</dd></dl>
        ${Array.isArray(g.member_fidelity) && g.member_fidelity.length ? `<h3>per member: its condition decoded against its trained adapter</h3>
          ${rowsTable(g.member_fidelity, "member-fidelity")}<p class="muted">weight error: distance of the weight update from the trained one (0 = the same, 1 = as far as none); recovered: share of the trained adapter's log-likelihood gain over the base kept on the member's examples (1 = as good as trained).</p>` : ""}
        <h3>training loss per epoch</h3>${lineChart(curve, "generator-loss")}
        ${Array.isArray(g.epochs) && g.epochs.length ? `<details><summary>per epoch (${g.epochs.length})</summary>${rowsTable(g.epochs.slice(0, 500))}</details>` : ""}
        <p><a class="button" id="generate-link" href="#/new?kind=generate&input=${encodeURIComponent(v.ref)}">Generate an adapter from it…</a></p>`,
      skip: ["generator_bytes", "checkpoint_bytes", "size_ratio", "members", "checkpoints_used", "final_recon_posterior_mean", "epochs", "condition", "member_fidelity"],
    };
  },
  // an adapter a generator made: each candidate's score on the examples, the chosen one marked
  generate: r => ({
    id: "generate-report", title: "Generated adapter",
    stats: [stat("candidates", num(r.samples)), stat("chosen", r.chosen == null ? "—" : "#" + (r.chosen + 1)),
            stat("selected by", esc(r.select || "—")), stat("condition", esc(r.condition || "—"))],
    body: Array.isArray(r.scores) ? `<h3>candidate scores (mean log-likelihood)</h3><table class="list" id="candidate-scores"><tbody>${r.scores.map((s, i) =>
      `<tr${i === r.chosen ? ' class="current"' : ""}><th scope="row">#${i + 1}${i === r.chosen ? " (chosen)" : ""}</th><td>${num(s)}</td></tr>`).join("")}</tbody></table>` : "",
    skip: ["samples", "chosen", "select", "condition", "scores"],
  }),
};

// ---------- "Try it" on adapter pages ----------

// An infer job with ?wait=, so short prompts answer in place; O3 versions show each prompt's gate weight, routed
// merges the routing weight of each expert.
versionExtras.push((object, v) => object !== "adapter" ? "" : `<section class="card" id="try-it"><h2>Try it</h2>
  <textarea id="try-prompt" rows="3" placeholder="a prompt"></textarea>
  <div class="row"><div><label for="try-max">max new tokens</label> <input id="try-max" type="number" min="1" max="512" value="32"></div>
  ${v.files.some(f => f.name.startsWith("o3/")) ? `<div><label for="try-gate">gate</label> <select id="try-gate">
    <option value="auto">auto (O3 detectors)</option><option value="off">off (plain PEFT files)</option></select></div>` : ""}
  ${v.files.some(f => f.name.startsWith("route/")) ? `<div><label for="try-route">routing</label> <select id="try-route">
    <option value="auto">auto (each input to its expert)</option><option value="off">off (plain PEFT files: the experts' cat merge)</option></select></div>` : ""}</div>
  <p><button id="try-run" type="button">Generate</button> <span class="muted" id="try-status"></span></p>
  <pre class="log" id="try-output"></pre></section>`);
versionHooks.push((root, object, v) => {
  const run = root.querySelector("#try-run");
  if (!run) return;
  run.onclick = async () => {
    const prompt = root.querySelector("#try-prompt").value;
    if (!prompt.trim()) { flash("type a prompt first"); return; }
    const gate = root.querySelector("#try-gate") || root.querySelector("#try-route");
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
        (r.gate_weights ? `\n<span class="gate" id="try-gate-weight">gate weight ${r.gate_weights[0].toFixed(3)}</span>` : "") +
        (r.route_weights ? `\n<span class="gate" id="try-route-weights">routing: ${r.route_weights[0].map((w, k) =>
          `<span class="route-weight" data-expert="${k}">${esc((r.experts || [])[k] || "expert " + k)} ${Number(w).toFixed(3)}</span>`).join(", ")}</span>` : "");
      root.querySelector("#try-status").innerHTML = `<a href="#/jobs/${esc(job.id)}">job ${esc(shortId(job.id))}</a>`;
    } catch (e) { root.querySelector("#try-status").textContent = ""; flash(e.message); }
    finally { run.disabled = false; }
  };
});
