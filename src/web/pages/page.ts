import type { Api, Doc } from '../api.js'
import { ApiError } from '../api.js'
import type { LiveUpdates } from '../live.js'
import { h } from '../lib/dom.js'
import { shortId, stateBadge, str } from '../lib/format.js'
import type { ResourceType, Store } from '../store.js'

/** What every page gets from the shell. */
export interface PageContext {
  api: Api
  store: Store
  live: LiveUpdates
  navigate: (hash: string) => void
}

/** A rendered page; `dispose` stops its subscriptions, streams and timers. */
export interface PageView {
  title: string
  el: HTMLElement
  dispose: () => void
}

/** The message to show for a failed call. */
export function messageOf (err: unknown): string {
  if (err instanceof ApiError) return err.message
  if (err instanceof Error) return err.message
  return String(err)
}

/** A link to a document's page, or its short id when it has none. */
export function docLink (type: ResourceType, id: string, text?: string): HTMLElement {
  const label = text ?? shortId(id)
  if (type === 'training-job' || type === 'classifier' || type === 'classify-job') {
    return h('a', { href: `#/${type}s/${encodeURIComponent(id)}`, title: id }, label)
  }
  return h('span', { title: id, class: 'mono' }, label)
}

export function stateCell (doc: Doc): HTMLElement {
  return stateBadge(str(doc, 'processing-state'))
}

/** Disables a form's controls while `work` runs, so a double click cannot submit twice. */
export async function busy<T> (form: HTMLFormElement, work: () => Promise<T>): Promise<T> {
  const controls = [...form.elements].filter((e): e is HTMLButtonElement | HTMLInputElement | HTMLSelectElement => 'disabled' in e)
  const before = controls.map((c) => c.disabled)
  for (const c of controls) c.disabled = true
  form.setAttribute('aria-busy', 'true')
  try {
    return await work()
  } finally {
    controls.forEach((c, i) => { c.disabled = before[i] ?? false })
    form.removeAttribute('aria-busy')
  }
}
