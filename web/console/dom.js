// Building the page with DOM nodes and textContent only: nothing from the server is ever
// parsed as HTML.

/** A new element: `props` are properties (`dataset` is merged), `children` nodes or text. */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
}

/** Show or hide a node (the `hidden` attribute; the stylesheet honours it). */
export function show(node, visible) {
  node.hidden = !visible;
}
