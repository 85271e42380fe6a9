// Timeline: control planes created and their status transitions, migrations and rollbacks
// started and finished, newest first; rebuilt from Events and migration records.

import { h, clear, badge } from "../dom.js";
import { register } from "./registry.js";

function when(iso) {
  if (!iso) return "unknown time";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

register({
  id: "timeline",
  title: "Timeline",
  mount(root) {
    const body = h("div", {});
    root.append(h("h1", {}, "Timeline"), body);
    return {
      update(data) {
        const entries = data.timeline.entries;
        const list = h("ol", { class: "timeline" }, entries.map((e) => h("li", { class: `entry entry-${e.level}` },
          h("time", { datetime: e.time || "" }, when(e.time)),
          h("div", {}, badge(e.category, e.category === "migration" ? "info" : "neutral"), " ",
            h("strong", {}, e.title), " ", h("span", {}, e.subject)),
          e.message ? h("p", { class: "message" }, e.message) : null)));
        clear(body).append(h("section", { class: "panel" },
          entries.length ? list : h("p", {}, "Nothing has happened yet.")));
      },
    };
  },
});
