import type { Doc } from '../api.js'
import { coalesce, h, replaceChildren } from '../lib/dom.js'
import type { ResourceType, Store } from '../store.js'

export interface DocSelect {
  select: HTMLSelectElement
  dispose: () => void
}

/**
 * A <select> of the user's documents of one type, newest first, kept current as the store
 * changes; the chosen value survives re-renders.
 */
export function docSelect (store: Store, type: ResourceType, options: { label: (doc: Doc) => string, include?: (doc: Doc) => boolean, placeholder: string, name: string }): DocSelect {
  const select = h('select', { name: options.name, required: true })
  const render = coalesce(() => {
    const chosen = select.value
    const docs = store.list(type).filter(options.include ?? (() => true))
    replaceChildren(select,
      h('option', { value: '' }, docs.length === 0 ? `(none yet) ${options.placeholder}` : options.placeholder),
      docs.map((doc) => h('option', { value: doc.id }, options.label(doc))))
    // Keep the user's choice; otherwise preselect the newest, the usual next step.
    if (chosen !== '' && docs.some((d) => d.id === chosen)) select.value = chosen
    else if (docs[0] !== undefined) select.value = docs[0].id
  })
  render()
  const off = store.subscribe((changed) => { if (changed === type) render() })
  return { select, dispose: off }
}
