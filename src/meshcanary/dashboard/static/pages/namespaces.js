// Namespaces: what each namespace's labels select, what its pods run, what needs a restart,
// its last migration; migrate and rollback buttons (with confirmation) when actions are allowed.

import { h, clear, table, badge } from "../dom.js";
import { register } from "./registry.js";

function labels(map) {
  const entries = Object.entries(map).filter(([k]) => k !== "kubernetes.io/metadata.name");
  if (entries.length === 0) return "—";
  return h("ul", { class: "labels" }, entries.map(([k, v]) => h("li", {}, h("code", {}, `${k}=${v}`))));
}

function podRevisions(counts) {
  if (counts.length === 0) return "—";
  return h("ul", { class: "plain" }, counts.map((c) => h("li", {}, `${c.revision} (${c.versions.join(", ")}): ${c.pods}`)));
}

function migration(row, action) {
  if (action && action.state === "running") {
    return badge(`${action.kind}: ${action.step}${action.message ? ` ${action.message}` : ""}`, "warn");
  }
  const record = row.migration;
  if (!record) return "—";
  const kind = record.result === "succeeded" ? "ok" : record.result === "running" ? "warn" : "bad";
  return h("div", {}, badge(record.result, kind), ` → ${record.target}`,
    record.message ? h("div", { class: "muted" }, record.message) : null);
}

function actions(row, data, context) {
  if (!data.allowActions) return h("span", { class: "muted" }, "read-only");
  const running = data.actions[row.name] && data.actions[row.name].state === "running";
  const targets = data.namespaces.targets.filter((t) => t !== row.revision);
  const migrate = h("button", {
    type: "button", class: "small", "data-key": `migrate:${row.name}`, "data-action": "migrate",
    "data-namespace": row.name, disabled: running || targets.length === 0,
    onclick: () => askMigrate(row, targets, context),
  }, "Migrate…");
  const rollback = h("button", {
    type: "button", class: "small secondary", "data-key": `rollback:${row.name}`, "data-action": "rollback",
    "data-namespace": row.name, disabled: running || !row.previousRevision,
    title: row.previousRevision ? `back to ${row.previousRevision}` : "no previous revision recorded",
    onclick: () => askRollback(row, context),
  }, "Roll back…");
  return h("div", { class: "buttons" }, migrate, rollback);
}

async function askMigrate(row, targets, context) {
  const select = h("select", { id: "migrate-target", name: "to" }, targets.map((t) => h("option", { value: t }, t)));
  const extra = h("p", {}, h("label", { for: "migrate-target" }, "Target control plane "), select);
  const text = `Relabel namespace ${row.name} and restart all its workloads so their pods get the target control plane's proxy.`;
  if (await context.confirm(`Migrate ${row.name}?`, text, extra)) await context.act(row.name, "migrate", select.value);
}

async function askRollback(row, context) {
  const text = `Move namespace ${row.name} back to ${row.previousRevision} and restart all its workloads.`;
  if (await context.confirm(`Roll back ${row.name}?`, text, null)) await context.act(row.name, "rollback", null);
}

register({
  id: "namespaces",
  title: "Namespaces",
  mount(root, context) {
    const body = h("div", {});
    root.append(h("h1", {}, "Namespaces"), body);
    return {
      update(data) {
        const rows = data.namespaces.namespaces.map((row) => ({
          attrs: { "data-namespace": row.name, "data-needs-restart": row.needsRestart },
          cells: [row.name, labels(row.labels),
            row.revision ? h("span", {}, row.revision, row.conflict ? badge("IST0123", "bad") : null) : "—",
            podRevisions(row.podRevisions),
            row.needsRestart ? badge(`NEEDS RESTART: ${row.needsRestart}`, "bad") : "0",
            String(row.livePods), migration(row, data.actions[row.name]), actions(row, data, context)],
        }));
        clear(body).append(h("section", { class: "panel" },
          table("Namespaces", ["Namespace", "Labels", "Selected revision", "Pod revisions", "Needs restart",
            "Live pods", "Last migration", "Actions"], rows, "No namespaces.")));
      },
    };
  },
});
