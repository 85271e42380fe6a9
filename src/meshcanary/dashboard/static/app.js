// The dashboard shell: a page registry, hash routing, the live stream and the action dialog.
// Pages register themselves (pages/*.js); adding an "Upgrades" page is one more import and
// one more `register` call: the nav, routing and live updates come from the registry.

import { h, clear } from "./dom.js";
import { registry } from "./pages/registry.js";
import "./pages/mesh.js";
import "./pages/namespaces.js";
import "./pages/validation.js";
import "./pages/timeline.js";

const state = { data: null, session: { csrf: "", allowActions: false }, current: null, view: null };

function pageFromHash() {
  const id = location.hash.replace(/^#\/?/, "");
  return registry.find((page) => page.id === id) || registry[0];
}

function renderNav() {
  const nav = clear(document.getElementById("nav"));
  for (const page of registry) {
    const link = h("a", { href: `#${page.id}` }, page.title);
    if (state.current === page) link.setAttribute("aria-current", "page");
    nav.append(h("li", {}, link));
  }
}

function show(focus) {
  const page = pageFromHash();
  const main = document.getElementById("main");
  if (page !== state.current) {
    state.current = page;
    clear(main);
    document.title = `${page.title} · meshcanary`;
    state.view = page.mount(main, context);
    renderNav();
    if (focus) main.focus();
  }
  update();
}

// Re-render the current page with the latest data, keeping keyboard focus where it was.
function update() {
  if (!state.data || !state.data.mesh) return;
  const key = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.key : undefined;
  state.view.update(state.data);
  if (key) {
    const again = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

function connection(text, ok) {
  const element = document.getElementById("connection");
  element.textContent = text;
  element.className = `connection ${ok ? "ok" : "bad"}`;
}

export function notice(text, kind) {
  const box = document.getElementById("notices");
  const item = h("p", { class: `notice notice-${kind || "info"}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), 8000);
}

function listen() {
  const stream = new EventSource("/api/events");
  stream.addEventListener("open", () => connection("Live", true));
  stream.addEventListener("error", () => connection("Reconnecting…", false));
  stream.addEventListener("snapshot", (event) => {
    state.data = JSON.parse(event.data);
    document.body.dataset.version = String(state.data.version);
    if (state.data.error) connection(state.data.error, false);
    else connection("Live", true);
    show(false);
  });
  stream.addEventListener("action", (event) => {
    const action = JSON.parse(event.data);
    if (state.data) state.data.actions[action.namespace] = action;
    if (action.state !== "running") {
      notice(`${action.kind} ${action.namespace}: ${action.state} ${action.message}`,
        action.state === "succeeded" ? "ok" : "bad");
    }
    update();
  });
}

// The confirmation dialog: a native modal <dialog> (focus stays inside, Escape closes).
function confirmAction(title, text, extra) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const slot = clear(document.getElementById("confirm-extra"));
  if (extra) slot.append(extra);
  const opener = document.activeElement;
  dialog.returnValue = "cancel";
  dialog.showModal();
  (extra && extra.querySelector("select")) ? extra.querySelector("select").focus()
    : document.getElementById("confirm-cancel").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (opener && opener.isConnected) opener.focus();
      resolve(dialog.returnValue === "ok");
    }, { once: true });
  });
}

async function act(namespace, kind, to) {
  const response = await fetch(`/api/namespaces/${encodeURIComponent(namespace)}/${kind}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": state.session.csrf },
    body: JSON.stringify(to ? { to } : {}),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) notice(`${kind} ${namespace} refused: ${body.error || response.status}`, "bad");
  else notice(`${kind} ${namespace} started`, "info");
}

const context = {
  get session() { return state.session; },
  confirm: confirmAction,
  act,
  notice,
};

async function start() {
  const response = await fetch("/api/session", { credentials: "same-origin" });
  if (!response.ok) {
    connection("Not signed in", false);
    const main = clear(document.getElementById("main"));
    main.append(h("section", { class: "panel" },
      h("h1", {}, "Sign in"),
      h("p", {}, "Open the dashboard with the URL that `meshcanary dashboard` printed (it carries a one-time token).")));
    return;
  }
  state.session = await response.json();
  document.body.dataset.actions = String(state.session.allowActions);
  window.addEventListener("hashchange", () => show(true));
  show(false);
  listen();
}

start();
