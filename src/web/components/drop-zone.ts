import { h, uid } from '../lib/dom.js'

export interface DropZoneOptions {
  label: string
  hint: string
  accept: string
  multiple: boolean
  /** Called with the files dropped or chosen; files not matching `accept` are left out. */
  onFiles: (files: File[]) => void
  name?: string
}

function accepts (file: File, accept: string): boolean {
  return accept.split(',').map((a) => a.trim().toLowerCase()).some((a) => {
    if (a === '') return true
    if (a.startsWith('.')) return file.name.toLowerCase().endsWith(a)
    if (a.endsWith('/*')) return file.type.startsWith(a.slice(0, -1))
    return file.type === a
  })
}

/**
 * A file input that also takes files dragged onto it. The input stays a real, focusable
 * control inside the label, so keyboard and screen-reader users choose files the usual way.
 */
export function dropZone (options: DropZoneOptions): { el: HTMLElement, input: HTMLInputElement } {
  const input = h('input', { type: 'file', id: uid('drop'), accept: options.accept, multiple: options.multiple, name: options.name ?? null, class: 'drop-input' })
  const hintId = `${input.id}-hint`
  input.setAttribute('aria-describedby', hintId)
  const el = h('div', { class: 'drop-zone' },
    h('label', { for: input.id, class: 'drop-label' }, options.label),
    input,
    h('small', { id: hintId, class: 'hint' }, options.hint))
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])].filter((f) => accepts(f, options.accept))
    if (files.length > 0) options.onFiles(files)
  })
  el.addEventListener('dragover', (e) => {
    e.preventDefault()
    el.classList.add('drag-over')
  })
  el.addEventListener('dragleave', () => { el.classList.remove('drag-over') })
  el.addEventListener('drop', (e) => {
    e.preventDefault()
    el.classList.remove('drag-over')
    const dropped = [...(e.dataTransfer?.files ?? [])].filter((f) => accepts(f, options.accept))
    const files = options.multiple ? dropped : dropped.slice(0, 1)
    if (files.length > 0) options.onFiles(files)
  })
  return { el, input }
}
