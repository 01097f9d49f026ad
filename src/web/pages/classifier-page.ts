import type { Doc } from '../api.js'
import { dropZone } from '../components/drop-zone.js'
import { imagesOf, predictionList } from '../components/predictions.js'
import { Notice, h, replaceChildren, uid } from '../lib/dom.js'
import { shortId, stateBadge, str, when } from '../lib/format.js'
import { docLink, messageOf } from './page.js'
import type { PageContext, PageView } from './page.js'

/** Most images in one request (the server's limit). */
const MAX_IMAGES = 100

interface Batch {
  jobId: string | null
  files: File[]
  previews: string[]
  el: HTMLElement
  render: () => void
}

/**
 * One classifier: drop one or many images on it and see, beside each image, the top-5 labels
 * with their probabilities once the classify job has run. Each drop is one classify job.
 */
export function classifierPage (ctx: PageContext, id: string): PageView {
  const notice = new Notice()
  const details = h('div')
  const batchesHost = h('div', { class: 'batches', 'aria-live': 'polite' })
  const batches: Batch[] = []
  const unwatchers: Array<() => void> = []

  const renderDetails = (): void => {
    const doc = ctx.store.get('classifier', id)
    if (doc === undefined) return
    replaceChildren(details, h('p', {},
      'From training job ', docLink('training-job', str(doc, 'training-job-id')),
      `; images are resized to ${str(doc, 'image-width')}×${str(doc, 'image-height')} ${doc.color === true ? 'colour' : 'grey'}, scale ${str(doc, 'scale')}. Created `, when(str(doc, 'created-at')), '.'))
  }

  const batchView = (batch: Batch): void => {
    const job = batch.jobId === null ? undefined : ctx.store.get('classify-job', batch.jobId)
    const state = job === undefined ? (batch.jobId === null ? 'uploading' : 'pending') : str(job, 'processing-state')
    // Uploaded images are listed after URL images, in the order they were sent.
    const uploaded = job === undefined ? [] : imagesOf(job).filter((i) => i.url === null)
    replaceChildren(batch.el,
      h('h3', {}, batch.jobId === null ? 'Uploading…' : ['Classify job ', docLink('classify-job', batch.jobId), ' '], state === 'uploading' ? null : stateBadge(state)),
      job !== undefined && str(job, 'processing-state') === 'failed' ? h('p', { class: 'notice notice-error', role: 'alert' }, str(job, 'processing-log')) : null,
      h('ul', { class: 'image-results' }, batch.files.map((file, i) => {
        const result = uploaded[i]
        return h('li', { class: 'image-result', 'data-file': file.name },
          h('img', { src: batch.previews[i] ?? '', alt: file.name, width: 96, height: 96 }),
          h('div', {},
            h('p', { class: 'file-name' }, file.name),
            result === undefined || result.predictions.length === 0
              ? h('p', { class: 'muted' }, state === 'failed' || state === 'cancelled' ? 'not classified' : 'classifying…')
              : predictionList(result.predictions)))
      })))
  }

  const classify = (files: File[]): void => {
    notice.clear()
    if (files.length > MAX_IMAGES) {
      notice.error(`At most ${MAX_IMAGES} images at once; ${files.length} were given.`)
      return
    }
    // Previews come from the local files at once; the results fill in as the job runs.
    const batch: Batch = { jobId: null, files, previews: files.map((f) => URL.createObjectURL(f)), el: h('section', { class: 'card batch' }), render: () => {} }
    batch.render = () => { batchView(batch) }
    batches.unshift(batch)
    batchesHost.prepend(batch.el)
    batch.render()
    const data = new FormData()
    for (const file of files) data.append('files', file, file.name)
    ctx.api.postForm(`/classifiers/${encodeURIComponent(id)}/classify`, data).then((job: Doc) => {
      batch.jobId = job.id
      ctx.store.put('classify-job', job)
      // Watched so the polling fallback also refreshes it when the event stream is down.
      unwatchers.push(ctx.live.watch('classify-job', job.id))
      batch.render()
    }, (err: unknown) => {
      batch.el.remove()
      batches.splice(batches.indexOf(batch), 1)
      for (const url of batch.previews) URL.revokeObjectURL(url)
      notice.error(messageOf(err))
    })
  }

  const zone = dropZone({
    label: 'Drop images here, or choose them',
    hint: 'PNG or JPEG; one or many at once. Each image is shown with its five most likely labels.',
    accept: 'image/*,.png,.jpg,.jpeg',
    multiple: true,
    name: 'files',
    onFiles: (files) => {
      classify(files)
      zone.input.value = ''
    }
  })

  const off = ctx.store.subscribe((type, changed) => {
    if (type === 'classifier' && (changed === id || changed === null)) renderDetails()
    if (type === 'classify-job') {
      for (const batch of batches) if (changed === null || batch.jobId === changed) batch.render()
    }
  })
  ctx.live.refreshOne('classifier', id).then((doc) => {
    if (doc === null) notice.error(`Classifier ${id} does not exist (or is not yours).`)
  }, (err: unknown) => { notice.error(messageOf(err)) })
  renderDetails()

  const headingId = uid('h')
  const el = h('div', { class: 'page classifier' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/classifiers' }, '← Classifiers')),
    h('h1', {}, `Classifier ${shortId(id)}`),
    details,
    h('section', { class: 'card', 'aria-labelledby': headingId }, h('h2', { id: headingId }, 'Classify images'), zone.el),
    notice.el,
    batchesHost)
  return {
    title: `Classifier ${shortId(id)}`,
    el,
    dispose: () => {
      off()
      for (const u of unwatchers) u()
      for (const b of batches) for (const url of b.previews) URL.revokeObjectURL(url)
    }
  }
}
