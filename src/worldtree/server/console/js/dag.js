// The run's DAG as SVG: the vendored dagre lays the nodes out left to right (ranks follow the
// `needs` edges); this module only draws what dagre computed and recolors nodes as states change.
// Each node is a <g class="dag-node" data-node=ID data-state=STATE> holding its name and state
// as text, so people, CSS and tests read the same thing.

import dagre from "../vendor/dagre.esm.js";
import { s } from "./dom.js";

const NODE_HEIGHT = 46;
const CHAR_WIDTH = 7.2;  // the label font's average advance, to size boxes before rendering

function label(node) {
  // Steps read "job › step" (stage first when there is one); jobs and other kinds their path.
  if (node.kind === "step" && node.job) return [node.stage, node.job, node.name].filter(Boolean).join(" › ");
  return node.path || node.id;
}

/**
 * Draw `graph` ({nodes: [{id, path, name, kind, stage, job, state}], edges: [{from, to}]}) into
 * `svg`. `onSelect(id)` runs when a node is clicked (or Enter/Space on a focused one).
 * Returns {update(states: {id: state}), select(id)}.
 */
export function drawDag(svg, graph, onSelect) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    const text = label(node);
    g.setNode(node.id, { width: Math.max(130, Math.ceil(text.length * CHAR_WIDTH) + 44), height: NODE_HEIGHT, text });
  }
  for (const edge of graph.edges) {
    if (g.hasNode(edge.from) && g.hasNode(edge.to)) g.setEdge(edge.from, edge.to);
  }
  dagre.layout(g);

  const width = Math.ceil(g.graph().width || 200);
  const height = Math.ceil(g.graph().height || NODE_HEIGHT + 24);
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "group");
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "dag-arrow" }))));

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
    update(states) {
      for (const [id, value] of Object.entries(states)) {
        const item = elements.get(id);
        if (!item || item.el.dataset.state === value) continue;
        item.el.setAttribute("data-state", value);
        item.el.setAttribute("aria-label", `${item.path}: ${value}`);
        item.state.textContent = value;
      }
    },
    select(id) {
      for (const [key, item] of elements) item.el.classList.toggle("selected", key === id);
    },
  };
}
