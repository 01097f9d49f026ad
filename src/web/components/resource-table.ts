import type { Doc } from '../api.js'
import { coalesce, h, replaceChildren, uid } from '../lib/dom.js'
import type { Child } from '../lib/dom.js'
import { resourceOf } from '../store.js'
import type { ResourceType, Store } from '../store.js'

export interface Column {
  title: string
  cell: (doc: Doc) => Child
  /** Right-aligned numbers. */
  numeric?: boolean
}

export interface TableView {
  el: HTMLElement
  dispose: () => void
}

/**
 * One resource's list as a table, newest first, re-rendered whenever the store changes that
 * type (at most once a frame). Rows carry `data-id` and `data-state` for scripts and tests.
 */
export function resourceTable (store: Store, type: ResourceType, columns: Column[], options: { limit?: number, empty?: string } = {}): TableView {
  const resource = resourceOf(type)
  const headingId = uid('table')
  const body = h('tbody')
  const status = h('p', { class: 'muted table-status' })
  const table = h('table', { class: 'list', 'aria-labelledby': headingId, 'data-resource': type },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.numeric === true ? 'num' : null }, c.title)))),
    body)
  const el = h('section', { class: 'card list-card', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, resource.title),
    h('div', { class: 'table-scroll' }, table),
    status)

  const render = coalesce(() => {
    const docs = store.list(type).slice(0, options.limit ?? 50)
    replaceChildren(body, docs.map((doc) => h('tr', { 'data-id': doc.id, 'data-state': typeof doc['processing-state'] === 'string' ? doc['processing-state'] : null },
      columns.map((c) => h('td', { class: c.numeric === true ? 'num' : null }, c.cell(doc))))))
    status.textContent = !store.isLoaded(type) ? 'Loading…' : docs.length === 0 ? (options.empty ?? `No ${resource.title.toLowerCase()} yet.`) : ''
    status.hidden = status.textContent === ''
  })
  render()
  const off = store.subscribe((changed) => { if (changed === type) render() })
  return { el, dispose: off }
}
