// Validation: findings grouped by severity, filterable by text and severity. When the
// analyzers are not available, says so plainly (never invents findings).

import { h, clear, table, badge } from "../dom.js";
import { register } from "./registry.js";

const ORDER = ["error", "warning", "info"];
const KIND = { error: "bad", warning: "warn", info: "neutral" };

register({
  id: "validation",
  title: "Validation",
  mount(root) {
    const filter = { text: "", severity: "" };
    const search = h("input", { type: "search", id: "finding-filter", placeholder: "code, object or text" });
    const severity = h("select", { id: "finding-severity" },
      h("option", { value: "" }, "all severities"), ORDER.map((s) => h("option", { value: s }, s)));
    const body = h("div", {});
    root.append(h("h1", {}, "Validation"),
      h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
        h("label", { for: "finding-filter" }, "Filter"), search,
        h("label", { for: "finding-severity" }, "Severity"), severity),
      body);
    let last = null;
    const render = () => {
      if (!last) return;
      const v = last.validation;
      clear(body);
      if (!v.available) {
        body.append(h("section", { class: "panel" }, h("h2", {}, "Validation not available"), h("p", {}, v.reason)));
        return;
      }
      if (v.target) body.append(h("p", { class: "muted" }, `Checked against Istio ${v.target}.`));
      const text = filter.text.toLowerCase();
      const shown = v.findings.filter((f) => (!filter.severity || f.severity === filter.severity) &&
        (!text || `${f.code} ${f.subject} ${f.message} ${f.advice}`.toLowerCase().includes(text)));
      const groups = [...ORDER, ...new Set(shown.map((f) => f.severity).filter((s) => !ORDER.includes(s)))];
      for (const group of groups) {
        const items = shown.filter((f) => f.severity === group);
        if (items.length === 0) continue;
        body.append(h("section", { class: "panel" },
          h("h2", {}, badge(group, KIND[group] || "neutral"), ` ${items.length}`),
          table(`${group} findings`, ["Code", "Object", "Message", "Advice"],
            items.map((f) => [f.code, f.subject, f.message, f.advice || "—"]), "")));
      }
      if (shown.length === 0) body.append(h("p", { class: "panel" }, v.findings.length ? "No finding matches the filter." : "No findings: nothing blocks an upgrade."));
    };
    search.addEventListener("input", () => { filter.text = search.value; render(); });
    severity.addEventListener("change", () => { filter.severity = severity.value; render(); });
    return { update(data) { last = data; render(); } };
  },
});
