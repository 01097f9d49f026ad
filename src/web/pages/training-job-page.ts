import type { Doc } from '../api.js'
import { LogTail } from '../components/log-tail.js'
import { TrainingChart } from '../components/training-chart.js'
import { Notice, coalesce, field, h, replaceChildren, uid } from '../lib/dom.js'
import type { Child } from '../lib/dom.js'
import { duration, isActive, metric, num, obj, shortId, stateBadge, str, when } from '../lib/format.js'
import { busy, docLink, messageOf } from './page.js'
import type { PageContext, PageView } from './page.js'
import { iterationCell } from './training-jobs-page.js'

function basename (url: unknown): string | null {
  if (typeof url !== 'string') return null
  const name = url.split('/').pop()
  return name === undefined || name === '' ? null : name
}

function summary (doc: Doc): HTMLElement {
  const row = (term: string, value: Child): HTMLElement[] => [h('dt', {}, term), h('dd', {}, value)]
  return h('dl', { class: 'summary' },
    row('State', stateBadge(str(doc, 'processing-state'))),
    row('Solver', h('span', { class: 'mono', title: str(doc, 'solver-id') }, shortId(str(doc, 'solver-id')))),
    row('Attempts', String(num(doc, 'attempts') ?? 0)),
    row('Worker', str(doc, 'worker-id') || '–'),
    row('Created', when(str(doc, 'created-at'))),
    row('Started', when(str(doc, 'started-at'))),
    row('Finished', when(str(doc, 'finished-at'))),
    row('Run time', duration(str(doc, 'started-at'), str(doc, 'finished-at')) || '–'),
    str(doc, 'processing-log') === '' ? null : row('Message', h('span', { class: 'log-line' }, str(doc, 'processing-log'))))
}

function progressPanel (doc: Doc): HTMLElement {
  const progress = obj(doc.progress)
  const outputs = obj(progress?.['test-outputs']) ?? {}
  return h('dl', { class: 'summary', 'data-part': 'progress' },
    h('dt', {}, 'Iteration'), h('dd', {}, iterationCell(doc)),
    h('dt', {}, 'Loss'), h('dd', {}, metric(progress?.loss as number | null)),
    h('dt', {}, 'Learning rate'), h('dd', {}, metric(progress?.lr as number | null, 6)),
    Object.entries(outputs).map(([k, v]) => [h('dt', {}, `Test ${k}`), h('dd', {}, metric(v as number))]))
}

function classifierForm (ctx: PageContext, jobId: string): HTMLElement {
  const notice = new Notice()
  const deploy = h('input', { type: 'file', name: 'specification', accept: '.prototxt,.txt,text/plain', required: true })
  const width = h('input', { type: 'number', name: 'image-width', min: 1, max: 4096, required: true })
  const height = h('input', { type: 'number', name: 'image-height', min: 1, max: 4096, required: true })
  const scale = h('input', { type: 'number', name: 'scale', min: 0, step: 'any', value: 1, required: true })
  const color = h('input', { type: 'checkbox', name: 'color', id: uid('color') })
  const headingId = uid('h')
  const form = h('form', { class: 'card', 'aria-labelledby': headingId, 'data-form': 'classifier' },
    h('h2', { id: headingId }, 'Make a classifier from this model'),
    field('Deploy prototxt', deploy, 'The net for inference: an Input layer of the image size and a Softmax at the end.'),
    h('div', { class: 'field-row' }, field('Image width', width), field('Image height', height), field('Scale', scale, 'Multiplies pixel values, as in the deploy net\'s transform.')),
    h('div', { class: 'field checkbox' }, color, h('label', { for: color.id }, 'Colour images (3 channels)')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create classifier')),
    notice.el)
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const file = deploy.files?.[0]
    if (file === undefined) {
      notice.error('Choose the deploy prototxt.')
      return
    }
    const data = new FormData()
    data.append('training-job-id', jobId)
    data.append('image-width', width.value)
    data.append('image-height', height.value)
    data.append('scale', scale.value)
    data.append('color', String(color.checked))
    data.append('specification', file, file.name)
    busy(form, async () => await ctx.api.postForm('/classifiers', data)).then((doc) => {
      ctx.store.put('classifier', doc)
      ctx.navigate(`#/classifiers/${encodeURIComponent(doc.id)}`)
    }, (err: unknown) => { notice.error(messageOf(err)) })
  })
  return form
}

/**
 * One training run: state and attempts, live charts of loss, learning rate and test outputs,
 * the log following the run, cancel, downloads of the model and every snapshot, and a form
 * that turns the model into a classifier.
 */
export function trainingJobPage (ctx: PageContext, id: string): PageView {
  const path = `/training-jobs/${encodeURIComponent(id)}`
  const notice = new Notice()
  const chart = new TrainingChart()
  const log = new LogTail(ctx.api, `${path}/logs`, 'Training log')
  const heading = h('h1', {}, `Training job ${shortId(id)}`)
  const summaryHost = h('div')
  const progressHost = h('div')
  const actions = h('div', { class: 'actions' })
  const snapshotsHost = h('div')
  const classifierHost = h('div')
  const classifiersHost = h('div')
  // Built once: re-rendering it on every progress update would wipe what the user typed.
  let formShown = false

  const download = (url: string, name: string) => () => {
    ctx.api.download(url, name).catch((err: unknown) => { notice.error(messageOf(err)) })
  }

  const cancel = (button: HTMLButtonElement) => () => {
    if (!window.confirm(`Cancel training job ${shortId(id)}? A running job is stopped.`)) return
    button.disabled = true
    ctx.api.postJson(`${path}/cancel`, {}).then((doc) => {
      ctx.store.put('training-job', doc)
      notice.ok('Cancelled.')
    }, (err: unknown) => {
      button.disabled = false
      notice.error(messageOf(err))
    })
  }

  const render = coalesce(() => {
    const doc = ctx.store.get('training-job', id)
    if (doc === undefined) return
    const state = str(doc, 'processing-state')
    heading.replaceChildren(`Training job ${shortId(id)} `, stateBadge(state))
    replaceChildren(summaryHost, summary(doc))
    replaceChildren(progressHost, progressPanel(doc))
    chart.update(doc.progress)
    const cancelButton = h('button', { type: 'button', class: 'danger' }, 'Cancel training')
    cancelButton.addEventListener('click', cancel(cancelButton))
    replaceChildren(actions,
      isActive(state) ? cancelButton : null,
      typeof doc['trained-model-url'] === 'string'
        ? h('button', { type: 'button', onclick: download(`${path}/model`, `${id}.caffemodel`) }, 'Download trained model')
        : null)
    // Files are named by the basename of their blob URL, which is what the snapshot route takes.
    const snapshots = Array.isArray(doc.snapshots) ? doc.snapshots.map(obj).filter((s): s is Record<string, unknown> => s !== null) : []
    replaceChildren(snapshotsHost, snapshots.length === 0
      ? h('p', { class: 'muted' }, 'No snapshots yet.')
      : h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, 'Iteration'), h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col' }, 'Solver state'))),
        h('tbody', {}, snapshots.map((s) => {
          const model = basename(s['model-url'])
          const solverState = basename(s['state-url'])
          const button = (name: string | null): Child => name === null
            ? '–'
            : h('button', { type: 'button', class: 'link', onclick: download(`${path}/snapshots/${encodeURIComponent(name)}`, name) }, name)
          return h('tr', {}, h('td', { class: 'num' }, String(num(s, 'iteration') ?? '')), h('td', {}, button(model)), h('td', {}, button(solverState)))
        })))))
    if (state === 'finished_successfully' && !formShown) {
      formShown = true
      replaceChildren(classifierHost, classifierForm(ctx, id))
    }
    const classifiers = ctx.store.list('classifier').filter((c) => c['training-job-id'] === id)
    replaceChildren(classifiersHost, classifiers.length === 0
      ? null
      : h('p', {}, 'Classifiers of this model: ', classifiers.map((c, i) => [i > 0 ? ', ' : '', docLink('classifier', c.id)])))
    // A no-op while a follow is open; after a stream ended it reads what is new (a retried job).
    log.follow(isActive(state))
  })

  // Classifiers matter too: the page lists the ones made from this model.
  const off = ctx.store.subscribe((type, changed) => {
    if ((type === 'training-job' && (changed === id || changed === null)) || type === 'classifier') render()
  })
  const unwatch = ctx.live.watch('training-job', id)
  ctx.live.refreshOne('training-job', id).then((doc) => {
    if (doc === null) notice.error(`Training job ${id} does not exist (or is not yours).`)
  }, (err: unknown) => { notice.error(messageOf(err)) })
  render()

  const section = (title: string, ...children: Child[]): HTMLElement => {
    const hid = uid('h')
    return h('section', { class: 'card', 'aria-labelledby': hid }, h('h2', { id: hid }, title), ...children)
  }
  const el = h('div', { class: 'page training-job' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/training-jobs' }, '← Training jobs')),
    heading,
    notice.el,
    h('div', { class: 'grid-2' }, section('Run', summaryHost, actions), section('Progress', progressHost)),
    section('Learning curves', chart.el),
    section('Log', log.el),
    section('Snapshots', snapshotsHost),
    classifiersHost,
    classifierHost)
  return {
    title: `Training job ${shortId(id)}`,
    el,
    dispose: () => {
      off()
      unwatch()
      chart.dispose()
      log.dispose()
    }
  }
}
