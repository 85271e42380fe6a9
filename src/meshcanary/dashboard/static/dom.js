// DOM helpers. Cluster data is only ever inserted as text: `h` turns strings into text nodes
// and never parses HTML strings, so a label like "<script>" shows as those characters.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

// A table with a caption and column headers (th scope=col); rows are arrays of cells.
export function table(caption, headers, rows, empty) {
  const head = h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name))));
  const body = h("tbody", {});
  if (rows.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, empty)));
  }
  for (const row of rows) {
    const cells = Array.isArray(row) ? row : row.cells;
    const attrs = Array.isArray(row) ? {} : row.attrs;
    body.append(h("tr", attrs, cells.map((cell, i) => (i === 0
      ? h("th", { scope: "row" }, cell) : h("td", { "data-label": headers[i] }, cell)))));
  }
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", { class: "stack" }, h("caption", {}, caption), head, body));
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind || "neutral"}` }, text);
}

export function ago(iso) {
  if (!iso) return "";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return String(iso);
  const seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}
