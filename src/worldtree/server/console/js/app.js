// The console's shell: who is signed in (GET /api/v1/whoami), the token login, dark mode, and a
// small router over history.pushState (/console, /console/runs/{id}, /console/submit, ...).
// Each page gets an AbortSignal that fires when the user leaves it, so its polling and streams
// stop with it.

import { agentsPage } from "./agents.js";
import { api, RANK, setToken, token } from "./api.js";
import { h, replace } from "./dom.js";
import { pipelinesPage } from "./pipelines.js";
import { queuePage } from "./queue.js";
import { runPage } from "./run.js";
import { runsPage } from "./runs.js";
import { submitPage } from "./submit.js";

const view = document.getElementById("view");
let leaving = null;
let who = null;

// -- dark mode: the system's preference until the user picks one -------------------------------
const THEME_KEY = "worldtree.theme";
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem(THEME_KEY));
document.getElementById("theme").addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});

// -- who is calling ---------------------------------------------------------------------------
async function identify() {
  try {
    who = await api("/whoami");
  } catch (error) {
    if (error.status !== 401) throw error;
    who = null;
  }
  const label = document.getElementById("who");
  const logout = document.getElementById("logout");
  if (!who) { label.textContent = ""; logout.hidden = true; }
  else if (!who.auth) { label.textContent = "no authentication"; logout.hidden = true; }
  else { label.textContent = `${who.name} · ${who.role}`; label.dataset.role = who.role; logout.hidden = false; }
  for (const link of document.querySelectorAll("[data-needs]")) {
    link.hidden = !who || (RANK[who.role] || 0) < RANK[link.dataset.needs];
  }
  return who;
}

document.getElementById("logout").addEventListener("click", async () => {
  setToken(null);
  await identify();
  route();
});

function loginPage(reason) {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true,
    placeholder: "wt_…", "aria-label": "API token" });
  const message = h("p", { class: "error", "aria-live": "polite" }, reason || "");
  replace(view, h("h2", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste an API token (", h("code", {}, "worldtree token create --role viewer"),
      "). It is kept in this tab only."),
    h("form", { class: "login", onsubmit: async (event) => {
      event.preventDefault();
      setToken(input.value.trim());
      input.value = "";
      try {
        if (await identify()) { route(); return; }
        message.textContent = "The token is unknown, revoked or expired.";
      } catch (error) {
        message.textContent = error.message;
      }
      setToken(null);
    } }, input, h("button", { type: "submit" }, "Sign in")),
    message);
  input.focus();
}

// -- routing ----------------------------------------------------------------------------------
export function navigate(url) {
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
  route();
}

function route() {
  leaving?.abort();
  leaving = new AbortController();
  const context = { who, signal: leaving.signal, navigate };
  const path = location.pathname.replace(/\/+$/, "");
  const page = path.replace(/^\/console/, "") || "/";
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === (page.split("/")[1] || "runs");
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (!who) { loginPage(token() ? "The token is unknown, revoked or expired." : ""); return; }
  const run = page.match(/^\/runs\/([^/]+)$/);
  if (run) runPage(view, decodeURIComponent(run[1]), context);
  else if (page === "/submit") submitPage(view, context);
  else if (page === "/queue") queuePage(view, context);
  else if (page === "/pipelines") pipelinesPage(view, context);
  else if (page === "/agents") agentsPage(view, context);
  else if (page === "/" || page === "/runs") runsPage(view, context);
  else replace(view, h("h2", {}, "Not found"), h("p", {}, "No console page at this address."));
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", route);
window.addEventListener("worldtree:unauthorized", () => {
  if (!who) return;  // already signed out (or signing in)
  who = null;
  setToken(null);
  identify().then(route, () => route());
});

identify().then(route, (error) => {
  replace(view, h("h2", {}, "The server cannot be reached"), h("p", { class: "error" }, error.message));
});
