// h('tag', {attrs, onclick}, ...children): builds DOM nodes; strings become text (never HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function render(target, ...nodes) {
  target.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
}

export function flash(message, kind = 'ok') {
  const box = document.getElementById('flash');
  render(box, h('div', { class: kind, role: kind === 'error' ? 'alert' : undefined }, message));
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => render(box), 6000);
}

export const stateBadge = (state) => h('span', { class: `state state-${state}` }, state);

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

/** A labelled form field. */
export function field(label, input) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  input.id = id;
  return [h('label', { for: id }, label), input];
}
