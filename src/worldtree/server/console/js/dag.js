// The run's DAG as SVG: the vendored dagre lays the nodes out left to right (ranks follow the
// `needs` edges); this module only draws what dagre computed and recolors nodes as states change.
// Each node is a <g class="dag-node" data-node=ID data-state=STATE> holding its name and state
// as text, so people, CSS and tests read the same thing.

import dagre from "../vendor/dagre.esm.js";
import { s } from "./dom.js";

const NODE_HEIGHT = 46;
const CHAR_WIDTH = 7.2;  // the label font's average advance, to size boxes before rendering
const TITLE = 22;  // room for a job box's title above its steps

/** The job a step belongs to (stage and job), or null for a node that is not a job's step. */
function jobOf(node) {
  return node.kind === "step" && node.job ? [node.stage, node.job].filter(Boolean).join(" › ") : null;
}

/**
 * Draw `graph` ({nodes: [{id, path, name, kind, stage, job, state}], edges: [{from, to}]}) into
 * `svg`. A job with several steps is drawn as a box around them (a dagre compound node), its steps
 * labelled by their own names; a one-step job is one node labelled "stage › job › step".
 * `onSelect(id)` runs when a node is clicked (or Enter/Space on a focused one).
 * Returns {update(states: {id: state}), select(id)}.
 */
export function drawDag(svg, graph, onSelect) {
  const g = new dagre.graphlib.Graph({ compound: true });
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const steps = new Map();
  for (const node of graph.nodes) {
    const job = jobOf(node);
    if (job) steps.set(job, (steps.get(job) || 0) + 1);
  }
  const clusters = new Map();
  for (const node of graph.nodes) {
    const job = jobOf(node);
    const boxed = job && steps.get(job) > 1;
    const text = boxed ? node.name : job ? `${job} › ${node.name}` : node.path || node.id;
    g.setNode(node.id, { width: Math.max(130, Math.ceil(text.length * CHAR_WIDTH) + 44), height: NODE_HEIGHT, text });
    if (boxed) {
      const cluster = `job\u0000${job}`;  // cannot collide with a node id
      if (!clusters.has(cluster)) {
        clusters.set(cluster, job);
        g.setNode(cluster, { text: job, paddingTop: 26, paddingLeft: 10, paddingRight: 10, paddingBottom: 10 });
      }
      g.setParent(node.id, cluster);
    }
  }
  for (const edge of graph.edges) {
    if (g.hasNode(edge.from) && g.hasNode(edge.to)) g.setEdge(edge.from, edge.to);
  }
  // dagre leaves no room for a job's title: space the rows wider and draw each box that much taller.
  if (clusters.size) g.graph().nodesep = 18 + TITLE;
  dagre.layout(g);

  // A box's title band may reach above the drawing: shift everything down by that much.
  const top = Math.max(0, ...[...clusters.keys()].map((c) => TITLE - (g.node(c).y - g.node(c).height / 2)));
  const width = Math.ceil(g.graph().width || 200);
  const height = Math.ceil((g.graph().height || NODE_HEIGHT + 24) + top);
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 ${-top} ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "group");
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "dag-arrow" }))));

  const boxes = s("g", { class: "dag-jobs" });
  for (const [cluster, job] of clusters) {
    const box = g.node(cluster);
    const x = box.x - box.width / 2, y = box.y - box.height / 2 - TITLE;
    boxes.append(s("g", { class: "dag-job", "data-job": job, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` },
      s("rect", { class: "dag-job-box", width: box.width, height: box.height + TITLE, rx: 9, ry: 9 }),
      s("text", { class: "dag-job-label", x: 10, y: 17 }, job)));
  }
  svg.append(boxes);

  const edges = s("g", { class: "dag-edges" });
  for (const e of g.edges()) {
    const points = g.edge(e).points || [];
    const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
    edges.append(s("path", { d, class: "dag-edge", "data-from": e.v, "data-to": e.w, "marker-end": "url(#arrow)" }));
  }
  svg.append(edges);

  const elements = new Map();
  const nodes = s("g", { class: "dag-nodes" });
  for (const node of graph.nodes) {
    const box = g.node(node.id);
    const x = box.x - box.width / 2, y = box.y - box.height / 2;
    const state = s("text", { class: "dag-state", x: 12, y: 35 }, node.state);
    const el = s("g", {
      class: "dag-node", "data-node": node.id, "data-state": node.state, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
      tabindex: 0, role: "button", "aria-label": `${node.path}: ${node.state}`,
      onclick: () => onSelect(node.id),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onSelect(node.id); } },
    },
    s("title", {}, node.path),
    s("rect", { class: "dag-box", width: box.width, height: box.height, rx: 7, ry: 7 }),
    s("circle", { class: "dag-dot", cx: box.width - 14, cy: 14, r: 5 }),
    s("text", { class: "dag-label", x: 12, y: 18 }, box.text),
    state);
    elements.set(node.id, { el, state, path: node.path });
    nodes.append(el);
  }
  svg.append(nodes);

  return {
    /** `states`: {id: state}; `notes`: {id: "exit 3"} shown after the state (exit code, error). */
    update(states, notes = {}) {
      for (const [id, value] of Object.entries(states)) {
        const item = elements.get(id);
        if (!item) continue;
        const text = notes[id] ? `${value} · ${notes[id]}` : value;
        if (item.el.dataset.state === value && item.state.textContent === text) continue;
        item.el.setAttribute("data-state", value);
        item.el.setAttribute("aria-label", `${item.path}: ${text}`);
        item.state.textContent = text;
      }
    },
    select(id) {
      for (const [key, item] of elements) item.el.classList.toggle("selected", key === id);
    },
  };
}
