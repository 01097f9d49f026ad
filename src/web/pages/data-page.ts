import type { Doc } from '../api.js'
import { docSelect } from '../components/doc-select.js'
import { dropZone } from '../components/drop-zone.js'
import { resourceTable } from '../components/resource-table.js'
import { Notice, field, h, uid } from '../lib/dom.js'
import { bytes, num, shortId, stateText, str, when } from '../lib/format.js'
import { busy, docLink, messageOf, stateCell } from './page.js'
import type { PageContext, PageView } from './page.js'

function datafileName (doc: Doc): string {
  return str(doc, 'name') || shortId(doc.id)
}

function labelCount (doc: Doc): string {
  return Array.isArray(doc.labels) ? String(doc.labels.length) : ''
}

function uploadForm (ctx: PageContext): HTMLElement {
  const notice = new Notice()
  let chosen: File | null = null
  const chosenText = h('p', { class: 'muted', 'aria-live': 'polite' }, 'No file chosen.')
  const name = h('input', { type: 'text', name: 'name', maxlength: 200, autocomplete: 'off' })
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Upload progress' })
  const submit = h('button', { type: 'submit', disabled: true }, 'Upload')
  // Choosing and sending are two steps, so a wrong file dropped by accident costs nothing.
  const zone = dropZone({
    label: 'Drop a .tar.gz here, or choose one',
    hint: 'A .tar.gz of <label>/<image> files (or an archive holding an LMDB or LevelDB).',
    accept: '.tar.gz,.tgz,.tar,application/gzip,application/x-gzip,application/x-tar',
    multiple: false,
    onFiles: (files) => {
      chosen = files[0] ?? null
      chosenText.textContent = chosen === null ? 'No file chosen.' : `Chosen: ${chosen.name} (${bytes(chosen.size)})`
      submit.disabled = chosen === null
      notice.clear()
    }
  })
  const headingId = uid('h')
  const form = h('form', { class: 'card', 'aria-labelledby': headingId, 'data-form': 'datafile-upload' },
    h('h2', { id: headingId }, 'Upload a datafile'),
    zone.el, chosenText,
    field('Name (optional)', name),
    h('div', { class: 'actions' }, submit, progress),
    notice.el)
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    if (chosen === null) return
    const data = new FormData()
    if (name.value.trim() !== '') data.append('name', name.value.trim())
    // Fields before the file: the server reads the multipart stream in order.
    data.append('file', chosen, chosen.name)
    progress.hidden = false
    progress.value = 0
    // Datafiles run to hundreds of MB: the upload goes through XHR for its progress events.
    busy(form, async () => await ctx.api.upload('/datafiles', data, (f) => { progress.value = f })).then((doc) => {
      ctx.store.put('datafile', doc)
      notice.ok(`Uploaded ${datafileName(doc)}; it is being checked.`)
      chosen = null
      zone.input.value = ''
      chosenText.textContent = 'No file chosen.'
      submit.disabled = true
    }, (err: unknown) => { notice.error(messageOf(err)) }).finally(() => { progress.hidden = true })
  })
  return form
}

function urlForm (ctx: PageContext): HTMLElement {
  const notice = new Notice()
  const url = h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://…/images.tar.gz', autocomplete: 'off' })
  const name = h('input', { type: 'text', name: 'name', maxlength: 200, autocomplete: 'off' })
  const headingId = uid('h')
  const form = h('form', { class: 'card', 'aria-labelledby': headingId, 'data-form': 'datafile-url' },
    h('h2', { id: headingId }, 'Or have the server download one'),
    field('URL', url, 'The server fetches it; private network addresses are refused unless the server allows them.'),
    field('Name (optional)', name),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add datafile')),
    notice.el)
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const body = { url: url.value.trim(), ...(name.value.trim() === '' ? {} : { name: name.value.trim() }) }
    busy(form, async () => await ctx.api.postJson('/datafiles', body)).then((doc) => {
      ctx.store.put('datafile', doc)
      notice.ok(`Added ${datafileName(doc)}; it is being downloaded.`)
      form.reset()
    }, (err: unknown) => { notice.error(messageOf(err)) })
  })
  return form
}

function splitForm (ctx: PageContext, disposers: Array<() => void>): HTMLElement {
  const notice = new Notice()
  const source = docSelect(ctx.store, 'datafile', {
    name: 'datafile-id',
    placeholder: 'Choose a datafile',
    // A datafile still being checked may be chosen: the dataset job waits for it.
    include: (d) => str(d, 'processing-state') !== 'failed' && str(d, 'processing-state') !== 'cancelled',
    label: (d) => `${datafileName(d)} (${stateText(str(d, 'processing-state'))})`
  })
  disposers.push(source.dispose)
  const training = h('input', { type: 'number', name: 'training', min: 1, max: 99, step: 1, value: 80, required: true })
  const test = h('input', { type: 'number', name: 'test', min: 1, max: 99, step: 1, value: 20, required: true })
  const headingId = uid('h')
  const form = h('form', { class: 'card', 'aria-labelledby': headingId, 'data-form': 'dataset' },
    h('h2', { id: headingId }, 'Split a datafile into a dataset'),
    field('Datafile', source.select),
    h('div', { class: 'field-row' }, field('Training %', training), field('Test %', test)),
    h('p', { class: 'hint' }, 'Each label is split the same way, so both parts keep every label.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create dataset')),
    notice.el)
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const id = source.select.value
    // One datafile split two ways; the server accepts percentages (80) as well as fractions.
    const body = {
      training: { 'datafile-id': id, 'split-percentage': Number(training.value) },
      test: { 'datafile-id': id, 'split-percentage': Number(test.value) }
    }
    busy(form, async () => await ctx.api.postJson('/datasets', body)).then((doc) => {
      ctx.store.put('dataset', doc)
      notice.ok(`Dataset ${shortId(doc.id)} created; it is being split.`)
    }, (err: unknown) => { notice.error(messageOf(err)) })
  })
  return form
}

/** Datafiles and datasets: upload or download a datafile, split it, and watch both lists. */
export function dataPage (ctx: PageContext): PageView {
  const disposers: Array<() => void> = []
  const datafiles = resourceTable(ctx.store, 'datafile', [
    { title: 'Name', cell: (d) => h('span', { title: d.id }, datafileName(d)) },
    { title: 'State', cell: stateCell },
    { title: 'Format', cell: (d) => str(d, 'format') },
    { title: 'Images', cell: (d) => String(num(d, 'image-count') ?? ''), numeric: true },
    { title: 'Labels', cell: labelCount, numeric: true },
    { title: 'Size', cell: (d) => bytes(num(d, 'size')), numeric: true },
    { title: 'Created', cell: (d) => when(str(d, 'created-at')) },
    { title: 'Message', cell: (d) => h('span', { class: 'log-line' }, str(d, 'processing-log')) }
  ])
  const datasets = resourceTable(ctx.store, 'dataset', [
    { title: 'Dataset', cell: (d) => docLink('dataset', d.id) },
    { title: 'State', cell: stateCell },
    {
      title: 'Split',
      cell: (d) => {
        const t = d.training as Record<string, unknown> | undefined
        const s = d.test as Record<string, unknown> | undefined
        const pct = (v: unknown): string => typeof v === 'number' ? `${Math.round(v <= 1 ? v * 100 : v)}%` : '?'
        return `${pct(t?.['split-percentage'])} / ${pct(s?.['split-percentage'])} of ${shortId(String(t?.['datafile-id'] ?? ''))}`
      }
    },
    { title: 'Labels', cell: labelCount, numeric: true },
    { title: 'Created', cell: (d) => when(str(d, 'created-at')) },
    { title: 'Message', cell: (d) => h('span', { class: 'log-line' }, str(d, 'processing-log')) }
  ])
  disposers.push(datafiles.dispose, datasets.dispose)
  const el = h('div', { class: 'page' },
    h('h1', {}, 'Data'),
    h('div', { class: 'grid-2' }, uploadForm(ctx), urlForm(ctx)),
    datafiles.el,
    splitForm(ctx, disposers),
    datasets.el)
  return { title: 'Data', el, dispose: () => { for (const d of disposers) d() } }
}
