import { createReadStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { blobUri } from '../../../blobstore/blob-uri.js'
import type { DocumentOf } from '../../../models/documents.js'
import type { Snapshot } from '../../../models/training-job.js'
import { CaffeLogParser } from '../../engine/log/caffe-log-parser.js'
import { NotFoundError, PermanentJobError } from '../../lib/errors.js'
import type { ArchiveLimits } from '../archive/index.js'
import type { CaffeCommand } from '../caffe-command.js'
import { trainedModelKey } from '../job-logs.js'
import type { JobContext, JobRunner, Readiness } from '../job-runner.js'
import type { JobStore } from '../job-store.js'
import { LeaseLostError } from '../job-store.js'
import { downloadBlob } from './blob-files.js'
import { explainCaffeFailure } from './caffe-failure.js'
import { LogShipper } from './log-shipper.js'
import { SnapshotUploader } from './snapshot-uploader.js'
import { TrainingProgress } from './training-progress.js'
import { WORK_FILES, prepareTrainingWorkspace } from './training-workspace.js'

export interface TrainingRunnerDeps {
  caffe: CaffeCommand
  /** Set with `--gpu` for a real Caffe: the solver is then switched to GPU mode. */
  gpu: boolean
  /** Progress is saved at most this often (default 2 s). */
  progressMs?: number
  /** Log chunks are uploaded at least this often while output arrives (default 2 s). */
  logFlushMs?: number
  logChunkBytes?: number
  /** How often snapshot files are checked (default 250 ms). */
  snapshotPollMs?: number
  /** How long a job waits before checking its dataset again (default 15 s). */
  waitMs?: number
  archiveLimits?: Partial<ArchiveLimits>
}

type Job = DocumentOf<'training-job'>

const NOTE = 'elastic-thought: '

/**
 * Runs training jobs: materialise the work dir (training-workspace.ts), run `caffe train`
 * with the work dir as cwd, ship its logs, progress and snapshots while it runs, and store
 * the final model. The snapshot prefix is relative ("snapshot"), so a .solverstate names its
 * model as `snapshot_iter_N.caffemodel` and a retry in a fresh work dir can resume from the
 * pair it downloads. A job that already has snapshots (a retry, or a job returned to the
 * queue at shutdown) resumes from its newest pair instead of starting over.
 */
export function createTrainingRunner (deps: TrainingRunnerDeps): JobRunner<'training-job'> {
  return {
    type: 'training-job',
    ready: async (job, store) => await datasetReadiness(job, store, deps.waitMs ?? 15_000),
    run: async (ctx) => await runTraining(ctx, deps)
  }
}

async function datasetReadiness (job: Job, store: JobStore, waitMs: number): Promise<Readiness> {
  let datasetId: string
  try {
    datasetId = (await store.read('solver', job['solver-id']))['dataset-id']
  } catch (err) {
    if (err instanceof NotFoundError) return { kind: 'fail', reason: `its solver ${job['solver-id']} no longer exists` }
    throw err
  }
  let dataset: DocumentOf<'dataset'>
  try {
    dataset = await store.read('dataset', datasetId)
  } catch (err) {
    if (err instanceof NotFoundError) return { kind: 'fail', reason: `the solver's dataset ${datasetId} no longer exists` }
    throw err
  }
  switch (dataset['processing-state']) {
    case 'finished_successfully': return { kind: 'ready' }
    case 'failed': return { kind: 'fail', reason: `the solver's dataset ${datasetId} failed${dataset['processing-log'] === '' ? '' : `: ${dataset['processing-log']}`}` }
    case 'cancelled': return { kind: 'fail', reason: `the solver's dataset ${datasetId} was cancelled` }
    default: return { kind: 'wait', delayMs: waitMs, reason: `waiting for dataset ${datasetId} (${dataset['processing-state']})` }
  }
}

async function runTraining (ctx: JobContext<'training-job'>, deps: TrainingRunnerDeps): Promise<(doc: Job) => Job> {
  const { job, blobs, workDir, log } = ctx
  const solver = await readInput(ctx, 'solver', job['solver-id'])
  const dataset = await readInput(ctx, 'dataset', solver['dataset-id'])
  if (dataset['processing-state'] !== 'finished_successfully') throw new PermanentJobError(`the solver's dataset ${dataset._id} is ${dataset['processing-state']}, not finished`)

  const shipperOptions = { blobs, jobId: job._id, attempt: ctx.attempt, log, ...(deps.logFlushMs === undefined ? {} : { flushMs: deps.logFlushMs }), ...(deps.logChunkBytes === undefined ? {} : { chunkBytes: deps.logChunkBytes }) }
  const stdout = new LogShipper({ ...shipperOptions, stream: 'stdout', localPath: path.join(workDir, 'stdout') })
  const stderr = new LogShipper({ ...shipperOptions, stream: 'stderr', localPath: path.join(workDir, 'stderr') })
  const say = (line: string): void => { stderr.write(`${NOTE}${line}\n`) }
  // Background work (progress saves, snapshot uploads) that fails for good stops the run.
  const stop = new AbortController()
  const signal = AbortSignal.any([ctx.signal, stop.signal])
  const timers: NodeJS.Timeout[] = []
  let shipped = false
  try {
    say(`attempt ${ctx.attempt} on worker ${ctx.workerId} with the ${deps.caffe.trainer}`)
    const ws = await prepareTrainingWorkspace({
      workDir,
      blobs,
      caffe: deps.caffe,
      solver,
      dataset,
      signal,
      solverMode: deps.gpu && !deps.caffe.usesBuiltinTrainer ? 'GPU' : 'CPU',
      say,
      output: { onStdout: (c) => { stdout.write(c) }, onStderr: (c) => { stderr.write(c) } },
      ...(deps.archiveLimits === undefined ? {} : { archiveLimits: deps.archiveLimits })
    })
    ctx.touch()

    const snapshots = new Map<number, Snapshot>(job.snapshots.map((s) => [s.iteration, s]))
    const resume = await fetchResumePoint(ctx, say)
    const progress = new TrainingProgress({ maxIter: ws.maxIter, previous: job.progress, ...(resume === undefined ? {} : { resumeIteration: resume.iteration }) })

    // Saves are serialised so progress and snapshot records never race each other.
    let saving: Promise<unknown> = Promise.resolve()
    const save = async (change: (doc: Job) => Job): Promise<void> => {
      const next = saving.then(async () => await ctx.update(change))
      saving = next.catch(() => {})
      await next
    }
    const fail = (err: unknown): void => { if (!stop.signal.aborted) stop.abort(err) }
    const saveProgress = async (): Promise<void> => {
      if (!progress.takeChanged()) return
      const value = progress.toJSON()
      await save((doc) => ({ ...doc, progress: value })).catch((err: unknown) => {
        if (err instanceof LeaseLostError) fail(err)
        else log.warn({ err }, 'progress could not be saved; will try again')
      })
    }

    const uploader = new SnapshotUploader({
      workDir,
      blobs,
      jobId: job._id,
      log,
      onUploaded: async (snap) => {
        snapshots.set(snap.iteration, snap)
        const list = [...snapshots.values()].sort((a, b) => a.iteration - b.iteration)
        await save((doc) => ({ ...doc, snapshots: list })).catch((err: unknown) => {
          if (err instanceof LeaseLostError) fail(err)
          throw err
        })
      }
    })
    if (resume !== undefined) uploader.markUploaded(resume.iteration, { model: resume.model, state: resume.state })

    const parser = new CaffeLogParser()
    const run = deps.caffe.train({ solver: ws.solverFile, snapshot: resume === undefined ? undefined : path.basename(resume.state) }, {
      cwd: workDir,
      signal,
      onStdout: (chunk) => { stdout.write(chunk) },
      onStderr: (chunk) => {
        stderr.write(chunk)
        for (const e of parser.push(chunk)) {
          if (e.kind === 'snapshot') uploader.noteSnapshot(e.what, e.path)
          else uploader.noteLine()
          progress.apply(e)
        }
      }
    })
    log.info({ pid: run.pid, program: run.program, resumeFrom: resume?.iteration }, 'caffe train started')
    timers.push(setInterval(() => {
      ctx.touch()
      saveProgress().catch(() => {})
    }, deps.progressMs ?? 2000))
    timers.push(setInterval(() => {
      uploader.tick().catch((err: unknown) => { if (err instanceof LeaseLostError) fail(err) })
    }, deps.snapshotPollMs ?? 250))

    let exit
    try {
      exit = await run.exited
    } catch (err) {
      // Our own stop carries the background failure; a cancel or shutdown is rethrown as is.
      throw stop.signal.aborted && !ctx.signal.aborted ? stop.signal.reason : err
    }
    for (const t of timers) clearInterval(t)
    for (const e of parser.end()) progress.apply(e)
    if (exit.code !== 0) {
      const message = explainCaffeFailure(exit, { what: 'training', workDir, files: ws.files })
      say(message)
      // Killed by a signal we did not send (the OOM killer, a crash): worth another attempt.
      if (exit.code === null) throw new Error(message)
      throw new PermanentJobError(message)
    }

    await uploader.finish()
    const final = uploader.newestModel()
    if (final === undefined) throw new PermanentJobError('training failed: Caffe finished without writing a model snapshot')
    const modelKey = trainedModelKey(job._id)
    await blobs.put(modelKey, createReadStream(final.path), { contentType: 'application/octet-stream', signal })
    say(`trained model stored as ${blobUri(modelKey)} (iteration ${final.iteration})`)
    await saving
    const stdoutUrl = await stdout.close()
    const stderrUrl = await stderr.close()
    shipped = true
    const finalProgress = progress.toJSON()
    const snapshotList = [...snapshots.values()].sort((a, b) => a.iteration - b.iteration)
    return (doc) => ({
      ...doc,
      'trained-model-url': blobUri(modelKey),
      'std-out-url': stdoutUrl,
      'std-err-url': stderrUrl,
      labels: ws.labels,
      progress: finalProgress,
      snapshots: snapshotList
    })
  } catch (err) {
    if (!signal.aborted) {
      if (err instanceof PermanentJobError) say(`failed: ${err.message}`)
      // A failed job keeps its log too: store it whole and point the document at it.
      try {
        const urls = { 'std-out-url': await stdout.close(), 'std-err-url': await stderr.close() }
        shipped = true
        await ctx.update((doc) => ({ ...doc, ...urls }))
      } catch (logErr) {
        log.warn({ err: logErr }, 'the log of the failed attempt could not be stored whole')
      }
    }
    throw err
  } finally {
    for (const t of timers) clearInterval(t)
    if (!shipped) {
      await stdout.abandon()
      await stderr.abandon()
    }
  }
}

async function readInput<T extends 'solver' | 'dataset'> (ctx: JobContext<'training-job'>, type: T, id: string): Promise<DocumentOf<T>> {
  try {
    return await ctx.store.read(type, id)
  } catch (err) {
    if (err instanceof NotFoundError) throw new PermanentJobError(`the training job's ${type} ${id} no longer exists`, { cause: err })
    throw err
  }
}

interface ResumePoint {
  iteration: number
  model: string
  state: string
}

/**
 * Downloads the newest snapshot pair the job already stored, newest first; a pair that
 * cannot be fetched is skipped (with a note), and without any the run starts over.
 */
async function fetchResumePoint (ctx: JobContext<'training-job'>, say: (line: string) => void): Promise<ResumePoint | undefined> {
  const candidates = [...ctx.job.snapshots].filter((s) => s['state-url'] !== null).sort((a, b) => b.iteration - a.iteration)
  for (const snap of candidates) {
    const model = path.join(ctx.workDir, `${WORK_FILES.snapshotPrefix}_iter_${snap.iteration}.caffemodel`)
    const state = path.join(ctx.workDir, `${WORK_FILES.snapshotPrefix}_iter_${snap.iteration}.solverstate`)
    try {
      await downloadBlob(ctx.blobs, snap['model-url'], model, 'the snapshot model', ctx.signal)
      await downloadBlob(ctx.blobs, snap['state-url'] ?? '', state, 'the snapshot solver state', ctx.signal)
      say(`resuming from the snapshot at iteration ${snap.iteration}`)
      return { iteration: snap.iteration, model, state }
    } catch (err) {
      if (ctx.signal.aborted) throw err
      ctx.log.warn({ err, iteration: snap.iteration }, 'snapshot could not be fetched for resuming')
      say(`the snapshot at iteration ${snap.iteration} could not be fetched (${err instanceof Error ? err.message : String(err)})`)
      await rm(model, { force: true })
      await rm(state, { force: true })
    }
  }
  if (candidates.length > 0) say('no stored snapshot could be fetched; training starts from the beginning')
  return undefined
}
