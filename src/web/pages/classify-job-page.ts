import { imagesOf, predictionList } from '../components/predictions.js'
import { LogTail } from '../components/log-tail.js'
import { Notice, coalesce, h, replaceChildren } from '../lib/dom.js'
import { duration, isActive, shortId, stateBadge, str, when } from '../lib/format.js'
import { docLink, messageOf } from './page.js'
import type { PageContext, PageView } from './page.js'

/** One classify job: its state and, per image, the top-5 labels; cancel while it runs. */
export function classifyJobPage (ctx: PageContext, id: string): PageView {
  const path = `/classify-jobs/${encodeURIComponent(id)}`
  const notice = new Notice()
  const heading = h('h1', {}, `Classify job ${shortId(id)}`)
  const body = h('div')
  const log = new LogTail(ctx.api, `${path}/logs`, 'Classifier log')

  const render = coalesce(() => {
    const job = ctx.store.get('classify-job', id)
    if (job === undefined) return
    const state = str(job, 'processing-state')
    heading.replaceChildren(`Classify job ${shortId(id)} `, stateBadge(state))
    const cancel = h('button', { type: 'button', class: 'danger' }, 'Cancel')
    cancel.addEventListener('click', () => {
      cancel.disabled = true
      ctx.api.postJson(`${path}/cancel`, {}).then((doc) => { ctx.store.put('classify-job', doc) }, (err: unknown) => {
        cancel.disabled = false
        notice.error(messageOf(err))
      })
    })
    // Images fetched by URL have no file name; the URL (or the key, its sha1) names them.
    replaceChildren(body,
      h('p', {}, 'Classifier ', docLink('classifier', str(job, 'classifier-id')), '; created ', when(str(job, 'created-at')),
        str(job, 'finished-at') === '' ? '' : `, ran ${duration(str(job, 'started-at'), str(job, 'finished-at'))}`, '.'),
      str(job, 'processing-log') === '' ? null : h('p', { class: 'log-line' }, str(job, 'processing-log')),
      isActive(state) ? h('div', { class: 'actions' }, cancel) : null,
      h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Image'), h('th', { scope: 'col' }, 'Top labels'))),
        h('tbody', {}, imagesOf(job).map((image) => h('tr', {},
          h('td', { class: 'file-name' }, image.filename ?? image.url ?? image.key),
          h('td', {}, image.predictions.length === 0 ? h('span', { class: 'muted' }, image.result) : predictionList(image.predictions))))))))
    log.follow(isActive(state))
  })
  const off = ctx.store.subscribe((type, changed) => { if (type === 'classify-job' && (changed === id || changed === null)) render() })
  const unwatch = ctx.live.watch('classify-job', id)
  ctx.live.refreshOne('classify-job', id).then((doc) => {
    if (doc === null) notice.error(`Classify job ${id} does not exist (or is not yours).`)
  }, (err: unknown) => { notice.error(messageOf(err)) })
  render()
  const el = h('div', { class: 'page' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/classifiers' }, '← Classifiers')),
    heading, notice.el, body,
    h('section', { class: 'card' }, h('h2', {}, 'Log'), log.el))
  return { title: `Classify job ${shortId(id)}`, el, dispose: () => { off(); unwatch(); log.dispose() } }
}
