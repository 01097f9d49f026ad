import type { Blob } from '../blob.js'
import type { FillerParameter } from '../proto/caffe.js'
import type { Rng } from '../random.js'

export const FILLER_TYPES = ['constant', 'gaussian', 'uniform', 'xavier', 'msra', 'positive_unitball', 'bilinear'] as const

/** A filler that does not exist or cannot fill the blob it was given (thrown as a plain message for the layer to wrap). */
export class FillerError extends Error {
  readonly code = 'ET_FILLER'
  constructor (message: string) {
    super(message)
    this.name = 'FillerError'
  }
}

/**
 * Fills blob.data as Caffe's Filler<Dtype> of the same type would, drawing every random number
 * from `rng` so a fixed seed gives identical weights. An absent parameter is Caffe's default
 * filler: constant 0. Throws FillerError for an unknown type or a blob the filler cannot handle.
 */
export function fillBlob (blob: Blob, filler: FillerParameter | undefined, rng: Rng): void {
  const type = filler?.type ?? 'constant'
  const data = blob.data
  const n = data.length
  switch (type) {
    case 'constant':
      data.fill(filler?.value ?? 0)
      return
    case 'uniform': {
      const lo = filler?.min ?? 0
      const hi = filler?.max ?? 1
      for (let i = 0; i < n; i++) data[i] = rng.uniformRange(lo, hi)
      return
    }
    case 'gaussian': {
      const mean = filler?.mean ?? 0
      const std = filler?.std ?? 1
      for (let i = 0; i < n; i++) data[i] = rng.gaussian(mean, std)
      const sparse = filler?.sparse ?? -1
      if (sparse >= 0) {
        // Caffe keeps each weight with probability sparse / num_outputs, num_outputs = shape(0).
        if (blob.shape.length < 1) throw new FillerError('sparse gaussian filler needs a blob with at least one axis')
        const p = sparse / (blob.shape[0] ?? 1)
        for (let i = 0; i < n; i++) if (!rng.bernoulli(p)) data[i] = 0
      }
      return
    }
    case 'positive_unitball': {
      for (let i = 0; i < n; i++) data[i] = rng.uniform()
      const rows = blob.shape[0] ?? 1
      const dim = rows === 0 ? 0 : n / rows
      for (let r = 0; r < rows; r++) {
        let sum = 0
        for (let j = 0; j < dim; j++) sum += data[r * dim + j]!
        for (let j = 0; j < dim; j++) data[r * dim + j] = data[r * dim + j]! / sum
      }
      return
    }
    case 'xavier': {
      const scale = Math.sqrt(3 / fanFor(blob, filler))
      for (let i = 0; i < n; i++) data[i] = rng.uniformRange(-scale, scale)
      return
    }
    case 'msra': {
      const std = Math.sqrt(2 / fanFor(blob, filler))
      for (let i = 0; i < n; i++) data[i] = rng.gaussian(0, std)
      return
    }
    case 'bilinear': {
      if (blob.shape.length !== 4) throw new FillerError(`bilinear filler needs a 4-axis blob, got ${blob.shapeString()}`)
      const width = blob.shape[3] ?? 1
      const height = blob.shape[2] ?? 1
      if (width !== height) throw new FillerError(`bilinear filler needs a square kernel, got ${height}x${width}`)
      const f = Math.ceil(width / 2)
      const c = (2 * f - 1 - (f % 2)) / (2 * f)
      for (let i = 0; i < n; i++) {
        const x = i % width
        const y = Math.floor(i / width) % height
        data[i] = (1 - Math.abs(x / f - c)) * (1 - Math.abs(y / f - c))
      }
      return
    }
    default:
      throw new FillerError(`unknown filler type "${type}" (supported: ${FILLER_TYPES.join(', ')})`)
  }
}

/** The n of Xavier/MSRA: fan_in = count/shape(0), fan_out = count/shape(1), or their mean. */
function fanFor (blob: Blob, filler: FillerParameter | undefined): number {
  const count = blob.count
  const fanIn = count / (blob.shape[0] ?? 1)
  const fanOut = count / (blob.shape[1] ?? 1)
  const norm = filler?.variance_norm ?? 'FAN_IN'
  const n = norm === 'FAN_OUT' ? fanOut : norm === 'AVERAGE' ? (fanIn + fanOut) / 2 : fanIn
  if (!(n > 0)) throw new FillerError(`${filler?.type ?? 'xavier'} filler cannot fill an empty blob (${blob.shapeString()})`)
  return n
}
