import type { Doc } from '../api.js'
import { docSelect } from '../components/doc-select.js'
import { resourceTable } from '../components/resource-table.js'
import { Notice, field, h, uid } from '../lib/dom.js'
import { metric, num, obj, shortId, str, when } from '../lib/format.js'
import { busy, docLink, messageOf, stateCell } from './page.js'
import type { PageContext, PageView } from './page.js'

/** "1200 / 10000" and a small progress bar for a training job. */
export function iterationCell (doc: Doc): HTMLElement {
  const progress = obj(doc.progress)
  const iteration = typeof progress?.iteration === 'number' ? progress.iteration : null
  const max = typeof progress?.['max-iter'] === 'number' ? progress['max-iter'] : null
  if (iteration === null) return h('span', { class: 'muted' }, '–')
  return h('span', { class: 'iteration' },
    max === null ? String(iteration) : `${iteration} / ${max}`,
    max === null || max === 0 ? null : h('progress', { max, value: iteration, 'aria-label': `iteration ${iteration} of ${max}` }))
}

export function accuracyOf (doc: Doc): number | null {
  const outputs = obj(obj(doc.progress)?.['test-outputs'])
  const value = outputs?.accuracy
  return typeof value === 'number' ? value : null
}

/** Training jobs: start one from a solver, and every run with its progress. */
export function trainingJobsPage (ctx: PageContext): PageView {
  const disposers: Array<() => void> = []
  const notice = new Notice()
  const solver = docSelect(ctx.store, 'solver', {
    name: 'solver-id',
    placeholder: 'Choose a solver',
    label: (d) => `${shortId(d.id)} (dataset ${shortId(str(d, 'dataset-id'))}, max_iter ${num(d, 'max-iter') ?? '?'})`
  })
  disposers.push(solver.dispose)
  const headingId = uid('h')
  const form = h('form', { class: 'card', 'aria-labelledby': headingId, 'data-form': 'training-job' },
    h('h2', { id: headingId }, 'Start a training job'),
    field('Solver', solver.select),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Start training')),
    notice.el)
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    busy(form, async () => await ctx.api.postJson('/training-jobs', { 'solver-id': solver.select.value })).then((doc) => {
      ctx.store.put('training-job', doc)
      // Starting a run is almost always followed by watching it.
      ctx.navigate(`#/training-jobs/${encodeURIComponent(doc.id)}`)
    }, (err: unknown) => { notice.error(messageOf(err)) })
  })
  const table = resourceTable(ctx.store, 'training-job', [
    { title: 'Job', cell: (d) => docLink('training-job', d.id) },
    { title: 'State', cell: stateCell },
    { title: 'Iteration', cell: iterationCell },
    { title: 'Loss', cell: (d) => metric(obj(d.progress)?.loss as number | null), numeric: true },
    { title: 'Accuracy', cell: (d) => metric(accuracyOf(d)), numeric: true },
    { title: 'Attempts', cell: (d) => String(num(d, 'attempts') ?? 0), numeric: true },
    { title: 'Created', cell: (d) => when(str(d, 'created-at')) }
  ])
  disposers.push(table.dispose)
  const el = h('div', { class: 'page' }, h('h1', {}, 'Training'), form, table.el)
  return { title: 'Training', el, dispose: () => { for (const d of disposers) d() } }
}
