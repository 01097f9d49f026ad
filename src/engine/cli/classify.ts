import { readFileSync } from 'node:fs'
import sharp from 'sharp'
import { Net } from '../net.js'
import { blobProtoData, blobProtoShape, decodeBlobProto } from '../proto/binary.js'
import { createMessage } from '../proto/caffe.js'
import { Rng } from '../random.js'
import { readCaffemodel, readNetPrototxt } from '../solver/file-solver-io.js'
import { CaffeFatalError, check } from './fatal.js'
import { int, str, type FlagSpecs, type FlagValues } from './flags.js'
import { createRuntime, type CliIo } from './runtime.js'

export const CLASSIFY_FLAGS: FlagSpecs = {
  model: { type: 'string', default: '', help: 'Deploy net prototxt (an Input layer, or input/input_dim).' },
  weights: { type: 'string', default: '', help: 'Trained .caffemodel.' },
  labels: { type: 'string', default: '', help: 'Optional; text file with one label per line, line i naming class i.' },
  top_k: { type: 'int32', default: 5, help: 'How many classes to report per image.' },
  mean_file: { type: 'string', default: '', help: 'Optional; mean .binaryproto subtracted from every image.' },
  mean_value: { type: 'string', default: '', help: "Optional; per-channel means separated by ',' (in the net's channel order)." },
  scale: { type: 'double', default: 1, help: 'Multiplies the input after mean subtraction (transform_param scale).' },
  raw_scale: { type: 'double', default: 255, help: 'Pixel values are read in [0, 1] and multiplied by this first.' },
  channel_swap: { type: 'string', default: '', help: "Order of the image's RGB channels in the net input; default 2,1,0 (BGR, Caffe's convention) for 3 channels." },
  kernels: { type: 'string', default: 'auto', help: 'Numeric kernels: auto, ts or blas.' },
  threads: { type: 'int32', default: 0, help: 'Threads for the kernels; 0 = every core.' },
  gpu: { type: 'string', default: '', help: 'Accepted and ignored (CPU only).' }
}

export interface Prediction { label: string, index: number, probability: number }
export interface ClassifyResult { input: string, predictions: Prediction[] }

/** Parses "104,117,123" style lists; `what` names the flag in the error. */
function numberList (text: string, what: string): number[] {
  if (text === '') return []
  return text.split(',').map((s) => {
    const v = Number(s.trim())
    if (s.trim() === '' || Number.isNaN(v)) throw new CaffeFatalError('classify.cpp:0', `--${what} must be numbers separated by ',' (got "${text}")`)
    return v
  })
}

/** Decodes an image to planar float [C, H, W] in [0, 1], resized to the net input and in RGB order. */
async function loadImage (path: string, channels: number, height: number, width: number): Promise<Float32Array> {
  let raw: { data: Buffer, info: { channels: number } }
  try {
    let img = sharp(path, { failOn: 'error' }).resize(width, height, { fit: 'fill' }).removeAlpha()
    img = channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb')
    raw = await img.raw().toBuffer({ resolveWithObject: true })
  } catch (err) {
    throw new CaffeFatalError('io.cpp:80', `Could not decode image ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  const { data, info } = raw
  const plane = height * width
  const out = new Float32Array(channels * plane)
  for (let c = 0; c < channels; c++) {
    // A grey image for a 3-channel net repeats its one channel; sharp gives srgb with 3 anyway.
    const src = Math.min(c, info.channels - 1)
    for (let p = 0; p < plane; p++) out[c * plane + p] = (data[p * info.channels + src] ?? 0) / 255
  }
  return out
}

/**
 * `classify`: runs a deploy net with trained weights on image files and prints, as JSON on
 * stdout, the top-k classes of each image. Preprocessing follows pycaffe's Classifier:
 * pixels in [0, 1] × raw_scale, channels reordered by channel_swap, mean subtracted, × scale.
 */
export async function classify (flags: FlagValues, images: readonly string[], io: CliIo): Promise<number> {
  check(str(flags, 'model') !== '', 'classify.cpp:0', 'Check failed: FLAGS_model.size() > 0 (0 vs. 0) Need a deploy model definition to classify.')
  check(str(flags, 'weights') !== '', 'classify.cpp:0', 'Check failed: FLAGS_weights.size() > 0 (0 vs. 0) Need model weights to classify.')
  check(images.length > 0, 'classify.cpp:0', 'Need at least one image to classify.')
  const topK = int(flags, 'top_k')
  check(topK > 0, 'classify.cpp:0', `--top_k must be positive (got ${topK})`)
  const runtime = createRuntime(str(flags, 'kernels'), int(flags, 'threads'))
  let net: Net | undefined
  try {
    const loaded = readNetPrototxt(str(flags, 'model'))
    net = await Net.create(loaded.net, {
      kernels: runtime.kernels,
      createLayer: runtime.createLayer,
      rng: new Rng(1701),
      log: io.log,
      state: createMessage('NetState', { phase: 'TEST' }),
      locate: loaded.locate
    })
    net.copyTrainedLayersFrom(readCaffemodel(str(flags, 'weights')))
    const input = net.inputBlobs[0]
    if (input === undefined || input.shape.length !== 4) {
      throw new CaffeFatalError('classify.cpp:0', `the deploy net needs one 4-D image input (N, C, H, W); ${input === undefined ? 'it has no Input layer' : `its input is ${input.shapeString()}`}`)
    }
    // Images go through in chunks of the deploy net's batch size; a short last chunk is zero-padded.
    const [batch = 1, channels = 1, height = 1, width = 1] = input.shape
    const plane = height * width
    const swap = numberList(str(flags, 'channel_swap'), 'channel_swap')
    const order = swap.length > 0 ? swap : channels === 3 ? [2, 1, 0] : Array.from({ length: channels }, (_, c) => c)
    if (order.length !== channels || order.some((c) => !Number.isInteger(c) || c < 0 || c >= channels)) {
      throw new CaffeFatalError('classify.cpp:0', `--channel_swap must list each of the ${channels} input channels once`)
    }
    const mean = loadMean(str(flags, 'mean_file'), numberList(str(flags, 'mean_value'), 'mean_value'), channels, height, width)
    const rawScale = Number(flags.raw_scale)
    const scale = Number(flags.scale)
    const labels = str(flags, 'labels') === '' ? [] : readFileSync(str(flags, 'labels'), 'utf8').split(/\r?\n/).filter((l, i, a) => l !== '' || i < a.length - 1)
    // BVLC deploy nets end in a Softmax named "prob"; other nets' raw scores are softmaxed here.
    const outputName = net.blobByName('prob') !== undefined ? 'prob' : net.blobNames[net.outputBlobIndices[net.outputBlobIndices.length - 1] ?? 0] ?? ''
    const lastType = net.layerParams[net.layerParams.length - 1]?.type ?? ''
    const results: ClassifyResult[] = []
    for (let start = 0; start < images.length; start += batch) {
      const chunk = images.slice(start, start + batch)
      input.data.fill(0)
      for (let b = 0; b < chunk.length; b++) {
        const img = await loadImage(chunk[b] ?? '', channels, height, width)
        for (let c = 0; c < channels; c++) {
          const src = (order[c] ?? c) * plane
          for (let p = 0; p < plane; p++) {
            const m = mean === undefined ? 0 : (mean.length === channels ? (mean[c] ?? 0) : (mean[c * plane + p] ?? 0))
            input.data[b * channels * plane + c * plane + p] = ((img[src + p] ?? 0) * rawScale - m) * scale
          }
        }
      }
      await net.forward()
      const out = net.blobByName(outputName)
      if (out === undefined) throw new CaffeFatalError('classify.cpp:0', 'the net produces no output blob')
      const classes = out.count / (out.shape[0] ?? 1)
      for (let b = 0; b < chunk.length; b++) {
        const row = Array.from(out.data.subarray(b * classes, (b + 1) * classes))
        const probs = lastType === 'Softmax' ? row : softmax(row)
        const ranked = probs.map((p, i) => ({ p, i })).sort((x, y) => y.p - x.p || x.i - y.i).slice(0, topK)
        results.push({
          input: chunk[b] ?? '',
          predictions: ranked.map(({ p, i }) => ({ label: labels[i] ?? String(i), index: i, probability: p }))
        })
      }
    }
    io.stdout.write(`${JSON.stringify({ model: str(flags, 'model'), weights: str(flags, 'weights'), results }, null, 2)}\n`)
    return 0
  } finally {
    await net?.close()
    runtime.kernels.close()
  }
}

/** Mean as a per-channel vector or a full [C, H, W] image; undefined when none was given. */
function loadMean (file: string, values: number[], channels: number, height: number, width: number): Float32Array | undefined {
  if (file !== '' && values.length > 0) throw new CaffeFatalError('classify.cpp:0', 'Cannot specify mean_file and mean_value at the same time')
  if (values.length > 0) {
    if (values.length !== 1 && values.length !== channels) {
      throw new CaffeFatalError('classify.cpp:0', `Specify either 1 mean_value or as many as channels: ${channels}`)
    }
    return Float32Array.from({ length: channels }, (_, c) => values[values.length === 1 ? 0 : c] ?? 0)
  }
  if (file === '') return undefined
  let proto
  try {
    proto = decodeBlobProto(readFileSync(file))
  } catch (err) {
    throw new CaffeFatalError('io.cpp:62', `Check failed: ReadProtoFromBinaryFile(param_file, param) Failed to parse mean file ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  const shape = blobProtoShape(proto)
  const data = blobProtoData(proto)
  const mc = shape.length >= 3 ? shape[shape.length - 3] ?? 1 : 1
  if (mc !== channels) throw new CaffeFatalError('classify.cpp:0', `mean file ${file} has ${mc} channels, the net input has ${channels}`)
  if (data.length === channels * height * width) return data
  // A mean of another size (e.g. 256×256 for a 227×227 crop) reduces to its per-channel average, as pycaffe does.
  const per = data.length / channels
  return Float32Array.from({ length: channels }, (_, c) => {
    let s = 0
    for (let k = 0; k < per; k++) s += data[c * per + k] ?? 0
    return s / per
  })
}

function softmax (row: number[]): number[] {
  const max = Math.max(...row)
  const e = row.map((v) => Math.exp(v - max))
  const sum = e.reduce((a, b) => a + b, 0)
  return e.map((v) => v / sum)
}
