import { docSelect } from '../components/doc-select.js'
import { resourceTable } from '../components/resource-table.js'
import { Notice, field, h, uid } from '../lib/dom.js'
import { num, shortId, stateText, str, when } from '../lib/format.js'
import { busy, messageOf, stateCell } from './page.js'
import type { PageContext, PageView } from './page.js'

/** Solvers: upload a solver and net prototxt for a dataset; the server checks both at once. */
export function solversPage (ctx: PageContext): PageView {
  const disposers: Array<() => void> = []
  const notice = new Notice()
  const dataset = docSelect(ctx.store, 'dataset', {
    name: 'dataset-id',
    placeholder: 'Choose a dataset',
    include: (d) => str(d, 'processing-state') !== 'failed' && str(d, 'processing-state') !== 'cancelled',
    label: (d) => `${shortId(d.id)} (${stateText(str(d, 'processing-state'))}, ${Array.isArray(d.labels) ? `${d.labels.length} labels` : 'labels not known yet'})`
  })
  disposers.push(dataset.dispose)
  const solverFile = h('input', { type: 'file', name: 'specification', accept: '.prototxt,.txt,text/plain', required: true })
  const netFile = h('input', { type: 'file', name: 'specification-net', accept: '.prototxt,.txt,text/plain', required: true })
  const headingId = uid('h')
  const form = h('form', { class: 'card', 'aria-labelledby': headingId, 'data-form': 'solver' },
    h('h2', { id: headingId }, 'Upload a solver'),
    field('Dataset', dataset.select),
    h('div', { class: 'grid-2' },
      field('Solver prototxt', solverFile, 'Caffe SolverParameter text: base_lr, max_iter, test_interval, snapshot…'),
      field('Net prototxt', netFile, 'The train/test net; its data layers are pointed at the dataset by the server.')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload solver')),
    notice.el)
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const solver = solverFile.files?.[0]
    const net = netFile.files?.[0]
    if (solver === undefined || net === undefined) {
      notice.error('Choose both the solver and the net prototxt.')
      return
    }
    const data = new FormData()
    data.append('dataset-id', dataset.select.value)
    data.append('specification', solver, solver.name)
    data.append('specification-net', net, net.name)
    // The server parses both files before it answers: a 400 names the file, line and problem,
    // and is shown as it is.
    busy(form, async () => await ctx.api.postForm('/solvers', data)).then((doc) => {
      ctx.store.put('solver', doc)
      notice.ok(`Solver ${shortId(doc.id)} created (max_iter ${num(doc, 'max-iter') ?? '?'}). `, h('a', { href: '#/training-jobs' }, 'Start a training job'))
      form.reset()
    }, (err: unknown) => { notice.error(messageOf(err)) })
  })

  const table = resourceTable(ctx.store, 'solver', [
    { title: 'Solver', cell: (d) => h('span', { title: d.id, class: 'mono' }, shortId(d.id)) },
    { title: 'Dataset', cell: (d) => h('span', { class: 'mono' }, shortId(str(d, 'dataset-id'))) },
    { title: 'Dataset state', cell: (d) => { const ds = ctx.store.get('dataset', str(d, 'dataset-id')); return ds === undefined ? '' : stateCell(ds) } },
    { title: 'Max iter', cell: (d) => String(num(d, 'max-iter') ?? ''), numeric: true },
    { title: 'Data layer', cell: (d) => str(d, 'data-layer-type') },
    { title: 'Created', cell: (d) => when(str(d, 'created-at')) }
  ])
  disposers.push(table.dispose)
  const el = h('div', { class: 'page' }, h('h1', {}, 'Solvers'), form, table.el)
  return { title: 'Solvers', el, dispose: () => { for (const d of disposers) d() } }
}
