import type { Doc } from '../api.js'
import { h } from '../lib/dom.js'
import { obj, str } from '../lib/format.js'

export interface Prediction {
  label: string
  probability: number
}

export interface ClassifiedImage {
  key: string
  filename: string | null
  url: string | null
  predictions: Prediction[]
  /** The original's one-word result: the top label, or "pending". */
  result: string
}

/** A classify job's images in request order, each with its top-k predictions (best first). */
export function imagesOf (job: Doc): ClassifiedImage[] {
  const images = Array.isArray(job.images) ? job.images : []
  const predictions = obj(job.predictions) ?? {}
  const results = obj(job.results) ?? {}
  const out: ClassifiedImage[] = []
  for (const raw of images) {
    const image = obj(raw)
    if (image === null) continue
    const key = str(image, 'key')
    const list = predictions[key]
    out.push({
      key,
      filename: typeof image.filename === 'string' ? image.filename : null,
      url: typeof image.url === 'string' ? image.url : null,
      result: typeof results[key] === 'string' ? results[key] : 'pending',
      // Documents come from the network: keep only well-formed entries rather than trust them.
      predictions: Array.isArray(list)
        ? list.flatMap((p) => {
          const o = obj(p)
          return o !== null && typeof o.label === 'string' && typeof o.probability === 'number' ? [{ label: o.label, probability: o.probability }] : []
        })
        : []
    })
  }
  return out
}

/** Top-5 labels with their probabilities as an ordered list of labelled meters. */
export function predictionList (predictions: Prediction[]): HTMLElement {
  return h('ol', { class: 'predictions' }, predictions.slice(0, 5).map((p) => {
    const percent = `${(p.probability * 100).toFixed(1)}%`
    return h('li', { 'data-label': p.label },
      h('span', { class: 'prediction-label' }, p.label),
      h('meter', { min: 0, max: 1, value: p.probability, 'aria-label': `${p.label}: ${percent}` }),
      h('span', { class: 'prediction-value' }, percent))
  }))
}
