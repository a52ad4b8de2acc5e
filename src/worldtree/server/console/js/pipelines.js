// Stored pipeline definitions (GET /api/v1/pipelines) with a trigger button for maintainers
// (POST /api/v1/pipelines/{name}/trigger, then the new run's page). Servers without stored
// pipelines answer 404: the page says the feature is not available there.

import { api, RANK } from "./api.js";
import { h, replace, when } from "./dom.js";

export async function pipelinesPage(view, { who, signal, navigate }) {
  const message = h("p", { class: "run-message", "aria-live": "polite" });
  let listed;
  try {
    listed = await api("/pipelines", { signal });
  } catch (error) {
    if (signal.aborted) return;
    replace(view, h("h2", {}, "Pipelines"), error.status === 404 || error.status === 405
      ? h("p", { class: "unavailable" }, "Stored pipelines are not available on this server.")
      : h("p", { class: "error" }, error.message));
    return;
  }
  const items = Array.isArray(listed) ? listed : (listed.items || []);
  const canTrigger = (RANK[who.role] || 0) >= RANK.maintainer;

  async function trigger(name, button) {
    button.disabled = true;
    try {
      const run = await api(`/pipelines/${encodeURIComponent(name)}/trigger`, { method: "POST" });
      navigate(`/console/runs/${run.id}`);
    } catch (error) {
      message.textContent = error.message;
      button.disabled = false;
    }
  }

  replace(view, h("h2", {}, "Pipelines"), message,
    items.length ? h("table", { class: "runs" },
      h("thead", {}, h("tr", {}, ["Name", "Updated", "Runs", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((p) => {
        const name = typeof p === "string" ? p : p.name;
        const button = canTrigger ? h("button", { type: "button", class: "small", onclick: () => trigger(name, button) }, "Trigger") : null;
        return h("tr", { "data-pipeline": name }, h("td", {}, name),
          h("td", {}, when(p.updated_at || p.created_at)), h("td", {}, p.runs ?? ""), h("td", {}, button));
      })))
      : h("p", { class: "muted" }, "No stored pipelines yet."));
}
