// A run's log, live: lines arrive over the SSE stream GET /runs/{id}/logs/stream (while the step
// still runs), resumed with Last-Event-ID after a dropped connection; a search box filters the
// lines shown; downloads export the whole log (or one node's) as text or JSON from the REST API.

import { api, download, sse } from "./api.js";
import { h, sleep } from "./dom.js";

/** Lines kept in the page; older ones are dropped from view (the download still has them all). */
const MAX_SHOWN = 5000;
const EXPORT_PAGE = 10000;
/** Terminal sequences (colors, cursor moves, window titles) and other control characters but tab:
 * the line is shown as the text they decorate. */
const ANSI = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f]/g;

export class LogView {
  constructor(runId) {
    this.runId = runId;
    this.node = null;
    this.controller = null;
    this.query = "";
    this.title = h("h3", { class: "log-title" }, "Logs");
    this.all = h("button", { type: "button", class: "link", id: "all-logs", hidden: true,
      onclick: () => { this.follow(null); this.onAll?.(); } }, "all steps");
    this.status = h("span", { class: "log-status muted", "aria-live": "polite" });
    this.search = h("input", { type: "search", class: "log-search", placeholder: "Search the log", "aria-label": "Search the log",
      oninput: () => { this.query = this.search.value.toLowerCase(); this.refilter(); } });
    this.lines = h("div", { class: "log-lines", role: "log", "aria-live": "off" });
    this.empty = h("p", { class: "muted log-empty" }, "No output yet.");
    this.element = h("section", { class: "panel log-panel" },
      h("div", { class: "panel-head" }, this.title, this.all, this.status, h("span", { class: "spacer" }), this.search,
        h("button", { type: "button", class: "secondary", "data-download": "text", onclick: () => this.export("text") }, "Download .txt"),
        h("button", { type: "button", class: "secondary", "data-download": "json", onclick: () => this.export("json") }, "Download .json")),
      this.empty, this.lines);
  }

  /** Follow `node`'s lines (null: every node's), replacing what is shown. */
  follow(node) {
    this.controller?.abort();
    this.controller = new AbortController();
    this.node = node;
    this.pending = [];
    this.all.hidden = !node;
    this.title.textContent = node ? `Logs — ${node}` : "Logs — all steps";
    this.lines.replaceChildren();
    this.empty.hidden = false;
    this.stream(this.controller.signal);
  }

  stop() { this.controller?.abort(); }

  async stream(signal) {
    const path = `/runs/${encodeURIComponent(this.runId)}/logs/stream` + (this.node ? `?node=${encodeURIComponent(this.node)}` : "");
    let lastEventId = null;
    let failures = 0;
    while (!signal.aborted) {
      this.status.textContent = "live";
      this.status.dataset.live = "true";
      try {
        for await (const event of sse(path, { signal, lastEventId })) {
          if (event.event === "end") {
            const { state } = JSON.parse(event.data || "{}");
            this.status.textContent = state ? `ended: ${state}` : "ended";
            this.status.dataset.live = "false";
            return;
          }
          if (event.id) lastEventId = event.id;
          this.add(JSON.parse(event.data));
          failures = 0;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error.status && error.status < 500) { this.status.textContent = error.message; return; }
        failures += 1;
      }
      // The stream closed without `end` (a replica restarted, a proxy timed out): resume.
      this.status.textContent = "reconnecting…";
      await sleep(Math.min(5000, 250 * 2 ** failures), signal);
    }
  }

  /** Queue a line; lines are put on the page once per animation frame, so a flood of output
   * costs one layout per frame, not one per line. */
  add(item) {
    this.pending.push(item);
    if (this.pending.length > 2 * MAX_SHOWN) this.pending.splice(0, this.pending.length - MAX_SHOWN);  // a hidden tab
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const batch = this.pending.splice(0, this.pending.length).slice(-MAX_SHOWN);
    if (!batch.length) return;
    this.empty.hidden = true;
    const stick = this.lines.scrollTop + this.lines.clientHeight >= this.lines.scrollHeight - 8;
    const rows = document.createDocumentFragment();
    for (const item of batch) {
      const text = item.line.replace(ANSI, "");
      const row = h("div", { class: `log-line ${item.stream === "stderr" ? "stderr" : ""}`, "data-node": item.node },
        this.node ? null : h("span", { class: "log-node" }, item.node),
        h("span", { class: "log-text" }, text));
      row.hidden = Boolean(this.query) && !text.toLowerCase().includes(this.query);
      rows.append(row);
    }
    this.lines.append(rows);
    for (let extra = this.lines.childElementCount - MAX_SHOWN; extra > 0; extra--) this.lines.firstElementChild.remove();
    if (stick) this.lines.scrollTop = this.lines.scrollHeight;
  }

  refilter() {
    for (const row of this.lines.children) {
      const text = row.querySelector(".log-text").textContent.toLowerCase();
      row.hidden = Boolean(this.query) && !text.includes(this.query);
    }
  }

  /** Download the log through the REST export, page by page so no length is too long: `format=text`
   * (the lines; the server's X-Next-Offset header says where the next page starts) or JSON
   * (`{seq, node, stream, line, ts}` items, whose `next_offset` does the same). */
  async export(format) {
    const node = this.node ? `&node=${encodeURIComponent(this.node)}` : "";
    const base = `/runs/${encodeURIComponent(this.runId)}/logs?limit=${EXPORT_PAGE}&format=${format}${node}`;
    const parts = [];
    let offset = 0;
    try {
      for (;;) {
        if (format === "json") {
          const page = await api(`${base}&offset=${offset}`);
          parts.push(...page.items);
          if (page.items.length < EXPORT_PAGE) break;
          offset = page.next_offset;
        } else {
          const response = await api(`${base}&offset=${offset}`, { raw: true });
          const text = await response.text();
          parts.push(text);
          const next = Number(response.headers.get("X-Next-Offset"));
          const count = (text.match(/\n/g) || []).length;
          if (count < EXPORT_PAGE || !Number.isFinite(next) || next <= offset) break;
          offset = next;
        }
      }
    } catch (error) {
      this.status.textContent = `download failed: ${error.message}`;
      return;
    }
    const stem = `${this.runId}${this.node ? "-" + this.node.replaceAll("/", "_") : ""}`;
    if (format === "json") download(`${stem}.json`, JSON.stringify(parts, null, 2), "application/json");
    else download(`${stem}.log`, parts.join(""), "text/plain");
  }
}
