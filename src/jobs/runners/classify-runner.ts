import { createWriteStream } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import sharp from 'sharp'
import { z } from 'zod'
import { blobUri } from '../../../blobstore/blob-uri.js'
import type { ClassifyImage, Prediction } from '../../../models/classify-job.js'
import type { DocumentOf } from '../../../models/documents.js'
import { NotFoundError, PermanentJobError } from '../../lib/errors.js'
import { FetchError } from '../../net/safe-fetch.js'
import type { SafeFetcher } from '../../net/safe-fetch.js'
import type { CaffeCommand } from '../caffe-command.js'
import { wholeLogKey } from '../job-logs.js'
import type { JobContext, JobRunner, Readiness } from '../job-runner.js'
import type { JobStore } from '../job-store.js'
import { downloadBlob } from './blob-files.js'
import { explainCaffeFailure } from './caffe-failure.js'

export interface ClassifyRunnerDeps {
  caffe: CaffeCommand
  fetcher: SafeFetcher
  /** `--allow-private-urls`: image URLs may point at loopback/private addresses. */
  allowPrivateUrls: boolean
  /** Largest image accepted (default 20 MiB). */
  maxImageBytes?: number
  /** Labels reported per image (default 5). */
  topK?: number
  /** Images fetched at once (default 4). */
  fetchConcurrency?: number
  /** How long a job waits before checking its training job again (default 15 s). */
  waitMs?: number
}

type Job = DocumentOf<'classify-job'>

const EngineOutput = z.object({
  results: z.array(z.object({
    input: z.string(),
    predictions: z.array(z.object({ label: z.string(), index: z.number().int().nonnegative(), probability: z.number() }))
  }))
})

/**
 * Runs classify jobs in the builtin engine: the classifier's deploy prototxt with its
 * training job's .caffemodel, on images fetched by URL (SafeFetcher) or uploaded to the blob
 * store. Each image is decoded here first, resized to the classifier's image size and made
 * grey or colour as it says, so a bad image fails the job with its URL instead of a path in
 * the work dir. Results keep the original's shape (`results[key]` = top label) and add the
 * top-k with probabilities in `predictions[key]`.
 */
export function createClassifyRunner (deps: ClassifyRunnerDeps): JobRunner<'classify-job'> {
  return {
    type: 'classify-job',
    ready: async (job, store) => await trainingReadiness(job, store, deps.waitMs ?? 15_000),
    run: async (ctx) => await runClassify(ctx, deps)
  }
}

async function trainingReadiness (job: Job, store: JobStore, waitMs: number): Promise<Readiness> {
  let trainingId: string
  try {
    trainingId = (await store.read('classifier', job['classifier-id']))['training-job-id']
  } catch (err) {
    if (err instanceof NotFoundError) return { kind: 'fail', reason: `its classifier ${job['classifier-id']} no longer exists` }
    throw err
  }
  let training: DocumentOf<'training-job'>
  try {
    training = await store.read('training-job', trainingId)
  } catch (err) {
    if (err instanceof NotFoundError) return { kind: 'fail', reason: `the classifier's training job ${trainingId} no longer exists` }
    throw err
  }
  switch (training['processing-state']) {
    case 'finished_successfully': return { kind: 'ready' }
    case 'failed': return { kind: 'fail', reason: `the classifier's training job ${trainingId} failed${training['processing-log'] === '' ? '' : `: ${training['processing-log']}`}` }
    case 'cancelled': return { kind: 'fail', reason: `the classifier's training job ${trainingId} was cancelled` }
    default: return { kind: 'wait', delayMs: waitMs, reason: `waiting for training job ${trainingId} (${training['processing-state']})` }
  }
}

async function runClassify (ctx: JobContext<'classify-job'>, deps: ClassifyRunnerDeps): Promise<(doc: Job) => Job> {
  const { job, blobs, workDir, signal } = ctx
  const classifier = await readInput(ctx, 'classifier', job['classifier-id'])
  const training = await readInput(ctx, 'training-job', classifier['training-job-id'])
  const modelUrl = training['trained-model-url']
  if (training['processing-state'] !== 'finished_successfully' || modelUrl === null) {
    throw new PermanentJobError(`the classifier's training job ${training._id} has no trained model (it is ${training['processing-state']})`)
  }
  if (job.images.length === 0) throw new PermanentJobError('the classify job has no images')

  await downloadBlob(blobs, classifier['specification-url'], path.join(workDir, 'classifier.prototxt'), 'the classifier prototxt', signal)
  await downloadBlob(blobs, modelUrl, path.join(workDir, 'caffe.model'), 'the trained model', signal)
  const labels = training.labels
  if (labels !== null) await writeFile(path.join(workDir, 'labels.txt'), labels.map((l) => `${l}\n`).join(''))
  await mkdir(path.join(workDir, 'images'))

  const size = { width: Number(classifier['image-width']), height: Number(classifier['image-height']) }
  const files = await mapLimit(job.images, deps.fetchConcurrency ?? 4, async (image, i) => await prepareImage(ctx, deps, image, i, size, classifier.color))
  ctx.touch()

  const out: Buffer[] = []
  const err: Buffer[] = []
  const rename = new Map(files.map((f, i) => [f, nameOf(job.images[i])]))
  const argv = [
    '--model=classifier.prototxt',
    '--weights=caffe.model',
    ...(labels === null ? [] : ['--labels=labels.txt']),
    `--top_k=${deps.topK ?? 5}`,
    `--raw_scale=${Number(classifier.scale)}`,
    ...files
  ]
  const run = deps.caffe.engine('classify', argv, { cwd: workDir, signal, onStdout: (c) => { out.push(c) }, onStderr: (c) => { err.push(c) } })
  const exit = await run.exited
  const stdoutUrl = await storeLog(ctx, 'stdout', out)
  const stderrUrl = await storeLog(ctx, 'stderr', err)
  if (exit.code !== 0) {
    throw new PermanentJobError(explainCaffeFailure(exit, {
      what: 'classification',
      workDir,
      files: { 'classifier.prototxt': { label: 'the classifier prototxt' }, 'caffe.model': { label: 'the trained model' } },
      rename: (token) => rename.get(token)
    }))
  }

  let parsed: z.infer<typeof EngineOutput>
  try {
    parsed = EngineOutput.parse(JSON.parse(Buffer.concat(out).toString('utf8')))
  } catch (cause) {
    throw new Error('the engine printed no readable classification results', { cause })
  }
  const results: Record<string, string> = {}
  const predictions: Record<string, Prediction[]> = {}
  job.images.forEach((image, i) => {
    const found = parsed.results[i]
    if (found === undefined || found.input !== files[i]) throw new Error(`the engine returned no result for image ${nameOf(image)}`)
    predictions[image.key] = found.predictions
    results[image.key] = found.predictions[0]?.label ?? ''
  })
  return (doc) => ({ ...doc, results, predictions, 'std-out-url': stdoutUrl, 'std-err-url': stderrUrl })
}

async function readInput<T extends 'classifier' | 'training-job'> (ctx: JobContext<'classify-job'>, type: T, id: string): Promise<DocumentOf<T>> {
  try {
    return await ctx.store.read(type, id)
  } catch (err) {
    if (err instanceof NotFoundError) throw new PermanentJobError(`the classify job's ${type} ${id} no longer exists`, { cause: err })
    throw err
  }
}

/** How the user knows an image: its URL, else its uploaded file name. */
function nameOf (image: ClassifyImage | undefined): string {
  return image?.url ?? image?.filename ?? image?.key ?? 'an image'
}

/**
 * Fetches one image (URL or uploaded blob), decodes it and writes it at the classifier's
 * size as `images/<n>.png`; returns that path relative to the work dir.
 */
async function prepareImage (ctx: JobContext<'classify-job'>, deps: ClassifyRunnerDeps, image: ClassifyImage, index: number, size: { width: number, height: number }, color: boolean): Promise<string> {
  const raw = path.join(ctx.workDir, 'images', `${index}.raw`)
  const name = nameOf(image)
  if (image['blob-url'] !== null) {
    await downloadBlob(ctx.blobs, image['blob-url'], raw, `the uploaded image ${name}`, ctx.signal)
  } else if (image.url !== null) {
    try {
      const res = await deps.fetcher.open(image.url, { allowPrivate: deps.allowPrivateUrls, maxBytes: deps.maxImageBytes ?? 20 * 1024 * 1024, signal: ctx.signal })
      await pipeline(res.body, createWriteStream(raw, { flags: 'wx' }), { signal: ctx.signal })
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason
      // A server error or a timeout may pass; a 404 or a refused address will not.
      if (err instanceof FetchError && err.retryable) throw new Error(`image ${name}: ${err.message}`, { cause: err })
      if (err instanceof FetchError) throw new PermanentJobError(`image ${name} could not be fetched: ${err.message}`, { cause: err })
      throw err
    }
  } else {
    throw new PermanentJobError(`image ${image.key} has neither a URL nor an uploaded file`)
  }
  const file = path.join('images', `${index}.png`)
  try {
    let img = sharp(raw, { failOn: 'error' }).resize(size.width, size.height, { fit: 'fill' }).removeAlpha()
    img = color ? img.toColourspace('srgb') : img.toColourspace('b-w')
    await img.png().toFile(path.join(ctx.workDir, file))
  } catch (err) {
    throw new PermanentJobError(`image ${name} could not be decoded as an image: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  } finally {
    await rm(raw, { force: true })
  }
  return file
}

async function storeLog (ctx: JobContext<'classify-job'>, stream: 'stdout' | 'stderr', chunks: Buffer[]): Promise<string> {
  const data = Buffer.concat(chunks)
  await writeFile(path.join(ctx.workDir, stream), data)
  const key = wholeLogKey(ctx.job._id, stream)
  await ctx.blobs.put(key, data, { contentType: 'text/plain; charset=utf-8' })
  return blobUri(key)
}

/** `Promise.all(items.map(fn))` with at most `limit` running at once; the first failure wins. */
async function mapLimit<T, R> (items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
