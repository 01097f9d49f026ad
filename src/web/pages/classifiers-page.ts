import { resourceTable } from '../components/resource-table.js'
import { h } from '../lib/dom.js'
import { str, when } from '../lib/format.js'
import { docLink, stateCell } from './page.js'
import type { PageContext, PageView } from './page.js'

/** Classifiers (open one to classify images) and every classify job. */
export function classifiersPage (ctx: PageContext): PageView {
  const classifiers = resourceTable(ctx.store, 'classifier', [
    { title: 'Classifier', cell: (d) => docLink('classifier', d.id) },
    { title: 'Training job', cell: (d) => docLink('training-job', str(d, 'training-job-id')) },
    { title: 'Image size', cell: (d) => `${str(d, 'image-width')}×${str(d, 'image-height')}${d.color === true ? ' colour' : ' grey'}` },
    { title: 'Created', cell: (d) => when(str(d, 'created-at')) }
  ], { empty: 'No classifiers yet: open a finished training job to make one.' })
  const jobs = resourceTable(ctx.store, 'classify-job', [
    { title: 'Job', cell: (d) => docLink('classify-job', d.id) },
    { title: 'State', cell: stateCell },
    { title: 'Classifier', cell: (d) => docLink('classifier', str(d, 'classifier-id')) },
    { title: 'Images', cell: (d) => String(Array.isArray(d.images) ? d.images.length : 0), numeric: true },
    { title: 'Created', cell: (d) => when(str(d, 'created-at')) }
  ])
  const el = h('div', { class: 'page' }, h('h1', {}, 'Classifiers'), classifiers.el, jobs.el)
  return { title: 'Classifiers', el, dispose: () => { classifiers.dispose(); jobs.dispose() } }
}
