// The runs list: search (name or id), filters (state, pipeline, time range), paging; the page
// refreshes itself (live.watchRuns) and keeps the filters in the address, so it can be shared.

import { badge, duration, h, replace, when } from "./dom.js";
import { watchRuns } from "./live.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "cancelled", "timed_out", "error"];
const PAGE_SIZE = 25;
/** How many of the newest runs a search looks through. */

export function runsPage(view, { signal, navigate }) {
  const params = new URLSearchParams(location.search);
  const field = (name, attrs) => h("input", { name, value: params.get(name) || "", ...attrs });
  const q = field("q", { type: "search", placeholder: "Search name or id", "aria-label": "Search name or id" });
  const pipeline = field("pipeline", { placeholder: "Pipeline", "aria-label": "Pipeline" });
  const state = h("select", { name: "state", "aria-label": "State" },
    STATES.map((s) => h("option", { value: s, selected: (params.get("state") || "") === s }, s || "any state")));
  const since = field("since", { type: "datetime-local", "aria-label": "Created after" });
  const until = field("until", { type: "datetime-local", "aria-label": "Created before" });
  const page = Math.max(1, Number(params.get("page")) || 1);
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); apply(1); } },
    q, state, pipeline, h("label", {}, "from ", since), h("label", {}, "to ", until),
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", class: "secondary", onclick: () => navigate("/console") }, "Clear"));
  for (const input of [state, since, until]) input.addEventListener("change", () => apply(1));
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  replace(view, h("h2", {}, "Runs"), form,
    h("table", { class: "runs" }, h("thead", {}, h("tr", {}, ["Run", "Pipeline", "State", "Attempt", "Created", "Duration"]
      .map((c) => h("th", {}, c)))), body), pager, status);

  function apply(toPage) {
    const next = new URLSearchParams();
    for (const input of [q, state, pipeline, since, until]) if (input.value) next.set(input.name, input.value);
    if (toPage > 1) next.set("page", String(toPage));
    navigate(`/console${next.size ? "?" + next : ""}`);
  }

  // The API's query: the time inputs are local wall-clock times; the API wants zoned ISO times.
  // The server searches (`q`: a substring of the id or the name) and pages.
  const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  for (const name of ["q", "state", "pipeline"]) if (params.get(name)) query.set(name, params.get(name));
  for (const name of ["since", "until"]) {
    const at = params.get(name) ? new Date(params.get(name)) : null;
    if (at && !Number.isNaN(at.getTime())) query.set(name, at.toISOString());  // a mistyped address: no bound
  }

  watchRuns(query.toString(), (result) => {
    const items = result.items;
    replace(body, items.map((r) => h("tr", { "data-run": r.id, "data-state": r.state },
      h("td", {}, h("a", { href: `/console/runs/${r.id}`, "data-link": true }, h("code", {}, r.id))),
      h("td", {}, r.pipeline), h("td", {}, badge(r.state)), h("td", {}, String(r.attempt)),
      h("td", {}, when(r.created_at)), h("td", {}, duration(r.started_at, r.finished_at)))));
    const pages = Math.max(1, Math.ceil(result.total / PAGE_SIZE));
    replace(pager,
      h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => apply(page - 1) }, "‹ Newer"),
      h("span", {}, ` page ${page} of ${pages} · ${result.total} run${result.total === 1 ? "" : "s"} `),
      h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => apply(page + 1) }, "Older ›"));
    status.textContent = items.length ? "" : "No runs match.";
  }, { signal, pages: 1, onError: (error) => { status.textContent = error.message; } });
}
