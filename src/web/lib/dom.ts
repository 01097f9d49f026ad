/** What `h()` accepts as children: nodes, text, nothing, or nested lists of those. */
export type Child = Node | string | number | null | undefined | false | Child[]

type Listener = (event: Event) => void
export type Attrs = Record<string, string | number | boolean | Listener | null | undefined>

/**
 * Creates an element: `on*` attributes become listeners, `true` makes a boolean attribute,
 * `false`/null/undefined leave it out. Text is always a text node, never parsed as HTML.
 */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value)
    } else if (name === 'value' && (el instanceof HTMLInputElement || el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement)) {
      el.value = String(value)
    } else {
      el.setAttribute(name, value === true ? '' : String(value))
    }
  }
  append(el, children)
  return el
}

function append (parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child)
  }
}

/** Replaces every child of `el`. */
export function replaceChildren (el: Element, ...children: Child[]): void {
  el.replaceChildren()
  append(el, children)
}

let nextId = 0
/** A document-unique id for pairing labels with inputs and regions with headings. */
export function uid (prefix: string): string {
  nextId += 1
  return `${prefix}-${nextId}`
}

/** A labelled form field: label above the control, an optional hint tied by aria-describedby. */
export function field (label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  if (control.id === '') control.id = uid('field')
  const hintEl = hint === undefined ? null : h('small', { id: `${control.id}-hint`, class: 'hint' }, hint)
  if (hintEl !== null) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl)
}

/**
 * A message area for a form: errors are announced at once (role=alert), successes politely.
 */
export class Notice {
  readonly el: HTMLElement = h('p', { class: 'notice', 'aria-live': 'polite', hidden: true })

  error (message: string): void {
    this.show(message, 'error')
    this.el.setAttribute('role', 'alert')
  }

  ok (message: string, ...extra: Child[]): void {
    this.show(message, 'ok', ...extra)
    this.el.removeAttribute('role')
  }

  clear (): void {
    this.el.hidden = true
    this.el.replaceChildren()
  }

  private show (message: string, kind: string, ...extra: Child[]): void {
    this.el.className = `notice notice-${kind}`
    replaceChildren(this.el, message, ...extra)
    this.el.hidden = false
  }
}

/** Runs `fn` at most once per animation frame, however often it is asked. */
export function coalesce (fn: () => void): () => void {
  let queued = false
  return () => {
    if (queued) return
    queued = true
    requestAnimationFrame(() => {
      queued = false
      fn()
    })
  }
}
