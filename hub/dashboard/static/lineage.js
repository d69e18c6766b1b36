// The lineage of one version as a layered SVG graph: parents to the left, this version in the middle, children to
// the right, each node with the base it is on (a transfer changes base; the graph says so). Edges end in arrowheads
// and carry one label each, set beside the node at their far end: nodes in a column never share a row, so labels
// cannot collide however many edges fan in or out. An edge to something the caller may not read arrives as
// {hidden: true} and is drawn as an unnamed, unlinked node.
"use strict";

const artifactBases = new Map();  // "adapter:ns/name" -> promise of its base name (or "")

function baseOf(object, ref) {
  const m = String(ref).match(/^([^/@]+)\/([^/@]+)@/);
  if (!m) return Promise.resolve("");
  const key = `${object}:${m[1]}/${m[2]}`;
  if (!artifactBases.has(key)) {
    artifactBases.set(key, api(`/${object}s/${encodeURIComponent(m[1])}/${encodeURIComponent(m[2])}`)
      .then(a => a.base || "").catch(() => ""));
  }
  return artifactBases.get(key);
}

async function lineageSvg(self, body) {
  const others = [...body.parents, ...body.children].filter(e => !e.hidden);
  const bases = await Promise.all(others.map(e => baseOf(e.object, e.version)));
  return lineageGraph(self, body, new Map(others.map((e, i) => [`${e.object}:${e.version}`, bases[i]])));
}

function lineageGraph(self, body, baseByRef = new Map()) {
  const key = n => n.hidden ? `hidden-${n.i}` : `${n.object}:${n.version}`;
  const selfKey = key(self);
  const nodes = new Map([[selfKey, { ...self, depth: 0 }]]);
  const edges = new Map();  // "from>to" -> {from, to, rels}: two relations between one pair make one edge, one label
  const addEdge = (from, to, rel) => {
    const k = from + ">" + to;
    if (!edges.has(k)) edges.set(k, { from, to, rels: [] });
    edges.get(k).rels.push(rel);
  };
  body.parents.forEach((p, i) => { const n = { ...p, i: "p" + i }; nodes.set(key(n), { ...n, depth: -1 }); addEdge(key(n), selfKey, p.relation); });
  body.children.forEach((c, i) => { const n = { ...c, i: "c" + i }; nodes.set(key(n), { ...n, depth: 1 }); addEdge(selfKey, key(n), c.relation); });
  const cols = new Map();
  for (const [k, n] of nodes) { if (!cols.has(n.depth)) cols.set(n.depth, []); cols.get(n.depth).push(k); }
  const ds = [...cols.keys()].sort((a, b) => a - b);
  const NW = 220, NH = 40, GX = 150, GY = 14;
  const rows = Math.max(...[...cols.values()].map(c => c.length));
  const W = ds.length * NW + (ds.length - 1) * GX + 20, H = rows * (NH + GY) + 20;
  const pos = new Map();
  ds.forEach((d, ci) => cols.get(d).forEach((k, ri) => pos.set(k, [10 + ci * (NW + GX), 10 + ri * (NH + GY) + (rows - cols.get(d).length) * (NH + GY) / 2])));
  const lines = [...edges.values()].map(e => {
    const [x1, y1] = pos.get(e.from), [x2, y2] = pos.get(e.to);
    const a = [x1 + NW, y1 + NH / 2], b = [x2, y2 + NH / 2];
    // the label sits by the end that is not this version: a parent's right side, or a child's left side
    const parentSide = e.to === selfKey;
    const label = parentSide ? `x="${a[0] + 6}" y="${a[1] - 5}" text-anchor="start"` : `x="${b[0] - 10}" y="${b[1] - 5}" text-anchor="end"`;
    const rel = e.rels.join(", ");
    return `<path class="edge" data-relation="${esc(rel)}" marker-end="url(#arrow)" d="M${a[0]},${a[1]} C${a[0] + GX / 2},${a[1]} ${b[0] - GX / 2},${b[1]} ${b[0] - 3},${b[1]}"/>
      <text class="edge-label" ${label}>${esc(rel)}</text>`;
  });
  const clip = (t, n) => t.length > n ? t.slice(0, n - 1) + "…" : t;
  const drawn = [...pos].map(([k, [x, y]]) => {
    const n = nodes.get(k);
    const text = n.hidden ? "hidden" : (n.object !== "adapter" ? n.object + " " : "") + n.version;
    const base = n.hidden ? "" : k === selfKey ? n.base || "" : baseByRef.get(k) || "";
    const label = `<rect width="${NW}" height="${NH}" rx="6"/><text x="${NW / 2}" y="${base ? 17 : NH / 2 + 4}" text-anchor="middle">${esc(clip(text, 34))}</text>` +
      (base ? `<text class="node-base" x="${NW / 2}" y="32" text-anchor="middle">on ${esc(clip(base, 30))}</text>` : "");
    const m = n.hidden ? null : n.version.match(/^([^/@ ]+)\/([^/@ ]+)@(.+)$/);
    const inner = m && k !== selfKey ? `<a href="#/${esc(n.object)}s/${esc(m[1])}/${esc(m[2])}@${esc(m[3])}">${label}</a>` : label;
    return `<g class="node${k === selfKey ? " self" : ""}${n.hidden ? " hidden" : ""}" data-node="${esc(n.hidden ? "hidden" : n.version)}" data-object="${esc(n.object || "")}" data-base="${esc(base)}" transform="translate(${x},${y})"><title>${esc(text)}${base ? " on " + esc(base) : ""}</title>${inner}</g>`;
  });
  return `<svg id="lineage-graph" class="lineage" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" data-edges="${edges.size}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
      <path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>
    ${lines.join("")}${drawn.join("")}</svg>${edges.size ? "" : `<p class="muted">no lineage: ${self.base ? "made on base " + esc(self.base) + ", " : ""}from no other version</p>`}`;
}
