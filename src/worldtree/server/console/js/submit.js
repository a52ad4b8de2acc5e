// Paste a pipeline and submit it (POST /api/v1/runs, application/yaml). A 422 carries the same
// located diagnostics as the CLI ({line, col, message}); each is listed, its line number is
// marked in the gutter, and the first one's line is selected in the editor.

import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";

const EXAMPLE = `name: hello
stages:
  - name: build
    jobs:
      - name: main
        steps:
          - name: greet
            command: echo hello from the console
`;

export function submitPage(view, { navigate }) {
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const editor = h("textarea", { id: "document", class: "editor", spellcheck: "false", wrap: "off",
    "aria-label": "Pipeline document (YAML)", rows: 22 });
  editor.value = sessionStorage.getItem("worldtree.draft") || EXAMPLE;
  const problems = h("ol", { class: "diagnostics", id: "diagnostics" });
  const message = h("p", { class: "run-message", "aria-live": "polite" });
  const button = h("button", { type: "submit", id: "submit-run" }, "Submit");
  let marked = new Map();

  function numbers() {
    const count = editor.value.split("\n").length;
    if (gutter.childElementCount !== count) {
      replace(gutter, Array.from({ length: count }, (_, i) => h("div", { class: "ln", "data-line": i + 1 }, String(i + 1))));
      mark(marked);
    }
    gutter.scrollTop = editor.scrollTop;
  }

  function mark(byLine) {
    marked = byLine;
    for (const ln of gutter.children) {
      const problem = byLine.get(Number(ln.dataset.line));
      ln.classList.toggle("error", Boolean(problem));
      if (problem) ln.title = problem; else ln.removeAttribute("title");
    }
  }

  function selectLine(line) {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const lineHeight = editor.scrollHeight / Math.max(1, lines.length);
    editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
    numbers();
  }

  editor.addEventListener("input", () => { sessionStorage.setItem("worldtree.draft", editor.value); mark(new Map()); numbers(); });
  editor.addEventListener("scroll", numbers);

  async function submit(event) {
    event.preventDefault();
    button.disabled = true;
    replace(problems);
    message.textContent = "";
    mark(new Map());
    try {
      const created = await api("/runs", { method: "POST", body: editor.value, contentType: "application/yaml" });
      sessionStorage.removeItem("worldtree.draft");
      navigate(`/console/runs/${created.id}`);
    } catch (error) {
      if (!(error instanceof ApiError)) { message.textContent = String(error); return; }
      message.textContent = error.message;
      const located = Array.isArray(error.details) ? error.details.filter((d) => d && d.line) : [];
      const byLine = new Map();
      for (const d of located) byLine.set(d.line, byLine.has(d.line) ? `${byLine.get(d.line)}\n${d.message}` : d.message);
      replace(problems, located.map((d) => h("li", { class: "diagnostic", "data-line": d.line },
        h("button", { type: "button", class: "link", onclick: () => selectLine(d.line) }, `line ${d.line}, col ${d.col}`),
        `: ${d.message}`)));
      mark(byLine);
      if (located.length) selectLine(located[0].line);
    } finally {
      button.disabled = false;
    }
  }

  replace(view, h("h2", {}, "Submit a pipeline"),
    h("form", { class: "submit-form", onsubmit: submit },
      h("div", { class: "editor-wrap" }, gutter, editor),
      h("div", { class: "actions" }, button, h("span", { class: "muted" }, "queued at once; you will follow it on its page"))),
    message, problems);
  numbers();
}
