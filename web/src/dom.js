// Small DOM helpers: elements built from data (text is always set as text, never as HTML)
// and status messages.

/**
 * Creates an element: `element('a', {href: '/x', class: 'link'}, 'text', child)`.
 * Attributes whose value is null, undefined or false are left out.
 */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Shows `message` in a status element; `kind` is '', 'loading', 'empty' or 'error'. */
export function showState(target, message, kind = '') {
  target.textContent = message;
  target.dataset.kind = kind;
  target.hidden = !message;
}

/** A status badge for a session or record status. */
export function statusBadge(status) {
  return element('span', { class: `badge status-${status}` }, status);
}

/** Sessions that may still change. */
export const UNFINISHED = new Set(['pending', 'running']);

/**
 * Points a "Download CSV" link at the export of `source` (an API path with the query of what
 * is shown) and shows it; without a source (nothing shown) it is hidden.
 */
export function offerDownload(link, source) {
  if (!link) return;
  if (!source) {
    link.hidden = true;
    link.removeAttribute('href');
    return;
  }
  const url = new URL(source, window.location.origin);
  url.searchParams.set('format', 'csv');
  link.href = `${url.pathname}${url.search}`;
  link.hidden = false;
}
