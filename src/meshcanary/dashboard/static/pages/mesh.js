// MESH: the seed's control plane columns plus version and live proxies, a chart of proxies by
// revision and proxy version (inline SVG), and the overall migration progress.

import { h, s, clear, table, badge, ago } from "../dom.js";
import { register } from "./registry.js";

const STATUS_KIND = { Available: "ok", Reconciling: "warn", Pending: "warn", ReconcileFailed: "bad", Unavailable: "bad", NoIstiod: "bad" };
const COLORS = ["#1f5fbf", "#b35900", "#0f7b3f", "#8a2be2", "#a3195b", "#00727a"];

function controlPlanes(rows) {
  return table("Control planes", ["Name", "Namespace", "Mode", "Network", "Status", "Mesh expansion",
    "Expansion GW IPs", "Error", "Age", "Version", "Proxies"],
  rows.map((cp) => ({
    attrs: { "data-cp": cp.revision, "data-proxies": cp.proxies },
    cells: [cp.name, cp.namespace, cp.mode || "—", cp.network || "—",
      badge(cp.status, STATUS_KIND[cp.status] || "neutral"), cp.meshExpansion ? "yes" : "no",
      cp.gatewayAddresses.join(", ") || "—", cp.error || "—", ago(cp.created) || "—", cp.version,
      h("span", { class: "count" }, String(cp.proxies))],
  })), "No control planes found.");
}

// Horizontal bars, one per (revision, proxy version); colour per revision, text labels.
function chart(bars) {
  const figure = h("figure", { class: "chart" });
  const caption = h("figcaption", {}, "Live proxies by revision and proxy version");
  if (bars.length === 0) {
    figure.append(caption, h("p", { class: "empty" }, "No live proxies."));
    return figure;
  }
  const max = Math.max(...bars.map((bar) => bar.proxies));
  const rowHeight = 44;
  const height = bars.length * rowHeight + 4;
  const svg = s("svg", { viewBox: `0 0 360 ${height}`, role: "img",
    "aria-label": bars.map((b) => `${b.revision} ${b.version}: ${b.proxies}`).join("; ") });
  const revisions = [...new Set(bars.map((bar) => bar.revision))];
  bars.forEach((bar, i) => {
    const y = i * rowHeight;
    const width = Math.max(2, Math.round((bar.proxies / max) * 300));
    const color = COLORS[revisions.indexOf(bar.revision) % COLORS.length];
    svg.append(
      s("text", { x: 0, y: y + 14, class: "chart-label" }, `${bar.revision} · ${bar.version}`),
      s("rect", { x: 0, y: y + 20, width, height: 18, rx: 3, fill: color }),
      s("text", { x: width + 6, y: y + 34, class: "chart-value" }, String(bar.proxies)),
    );
  });
  figure.append(caption, svg);
  return figure;
}

function progress(p) {
  const settled = p.namespacesSettled;
  const total = p.namespaces;
  const percent = total ? Math.round((settled / total) * 100) : 100;
  const migrations = Object.entries(p.migrations).map(([result, count]) => `${count} ${result}`).join(", ");
  return h("section", { class: "panel", "aria-labelledby": "progress-title" },
    h("h2", { id: "progress-title" }, "Migration progress"),
    h("div", { class: "cards" },
      card("Namespaces settled", `${settled} / ${total}`),
      card("Proxies needing restart", `${p.proxiesNeedingRestart} / ${p.proxies}`),
      card("Migrations recorded", migrations || "none")),
    h("label", { for: "progress-bar", class: "progress-label" }, `${percent}% of meshed namespaces run their selected revision`),
    h("progress", { id: "progress-bar", max: 100, value: percent }, `${percent}%`));
}

function card(label, value) {
  return h("div", { class: "card" }, h("span", { class: "card-label" }, label), h("span", { class: "card-value" }, value));
}

register({
  id: "mesh",
  title: "Mesh",
  mount(root) {
    const body = h("div", {});
    root.append(h("h1", {}, "Mesh"), body);
    return {
      update(data) {
        clear(body).append(
          h("section", { class: "panel", "aria-labelledby": "cp-title" },
            h("h2", { id: "cp-title" }, "Control planes"), controlPlanes(data.mesh.controlPlanes)),
          h("section", { class: "panel" }, chart(data.mesh.proxies)),
          progress(data.mesh.progress));
      },
    };
  },
});
