import { createReadStream } from 'node:fs'
import { readdir, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { BlobStore } from '../../../blobstore/blob-store.js'
import { blobUri } from '../../../blobstore/blob-uri.js'
import type { Snapshot } from '../../../models/training-job.js'
import type { Logger } from '../../lib/logger.js'
import { snapshotKey } from '../job-logs.js'

const SNAPSHOT_FILE = /_iter_(\d+)\.(caffemodel|solverstate)$/

interface Pending {
  iteration: number
  model: string | undefined
  state: string | undefined
  /** Sizes at the previous check and since when they have not changed. */
  sizes: string
  stableSince: number
  /** A log line arrived after the last snapshot line of this pair. */
  laterLine: boolean
}

export interface SnapshotUploaderOptions {
  workDir: string
  blobs: BlobStore
  jobId: string
  log: Logger
  /** Called after a pair is stored, in iteration order (the runner records it in the job). */
  onUploaded: (snapshot: Snapshot, files: { model: string, state: string | null }) => Promise<void>
  /** A pair whose files stopped growing this long is uploaded even without a later log line. */
  quietMs?: number
}

/**
 * Uploads each snapshot pair (`.caffemodel` + `.solverstate`) while training runs. Caffe logs
 * "Snapshotting to …" BEFORE it writes each file and real Caffe does not write atomically,
 * so a pair is only taken once both files exist, their sizes held still between two checks,
 * and either a later log line showed the solver moved on, the files stayed quiet for a while,
 * or the process ended. Uploaded pairs older than the newest are deleted locally so a long
 * run does not fill the disk.
 */
export class SnapshotUploader {
  readonly #o: SnapshotUploaderOptions
  readonly #pending = new Map<number, Pending>()
  readonly #uploaded = new Map<number, { model: string, state: string | null }>()
  #busy: Promise<void> = Promise.resolve()
  #exited = false
  #lastError: unknown

  constructor (options: SnapshotUploaderOptions) {
    this.#o = options
  }

  /** A snapshot line from the log (a path relative to the work dir, or absolute inside it). */
  noteSnapshot (what: 'model' | 'solverstate', file: string): void {
    const full = path.resolve(this.#o.workDir, file)
    const match = SNAPSHOT_FILE.exec(full)
    if (match === null || !full.startsWith(this.#o.workDir + path.sep)) return
    const iteration = Number(match[1])
    if (this.#uploaded.has(iteration)) return
    const p = this.#pending.get(iteration) ?? { iteration, model: undefined, state: undefined, sizes: '', stableSince: Date.now(), laterLine: false }
    if (what === 'model') p.model = full
    else p.state = full
    p.laterLine = false
    this.#pending.set(iteration, p)
  }

  /** A pair that is already stored (the snapshot a retry resumes from). */
  markUploaded (iteration: number, files: { model: string, state: string | null }): void {
    this.#uploaded.set(iteration, files)
  }

  /** Any other log line: the solver has moved past the snapshot it last announced. */
  noteLine (): void {
    for (const p of this.#pending.values()) p.laterLine = true
  }

  /** Checks pending pairs and uploads the complete ones; call every few hundred ms. */
  async tick (): Promise<void> {
    this.#busy = this.#busy.then(async () => { await this.#check() })
    await this.#busy
  }

  /**
   * After the process ended: uploads every pair still pending plus any snapshot file in the
   * work dir the log did not mention, and throws if one cannot be stored.
   */
  async finish (): Promise<void> {
    this.#exited = true
    for (const name of await readdir(this.#o.workDir)) {
      const m = SNAPSHOT_FILE.exec(name)
      if (m !== null) this.noteSnapshot(m[2] === 'caffemodel' ? 'model' : 'solverstate', name)
    }
    this.#lastError = undefined
    await this.tick()
    if (this.#lastError !== undefined) throw this.#lastError
  }

  /** Local path of the newest uploaded model, if any. */
  newestModel (): { iteration: number, path: string } | undefined {
    const newest = Math.max(...this.#uploaded.keys())
    const files = this.#uploaded.get(newest)
    return files === undefined ? undefined : { iteration: newest, path: files.model }
  }

  async #check (): Promise<void> {
    const now = Date.now()
    const quiet = this.#o.quietMs ?? 3000
    for (const p of [...this.#pending.values()].sort((a, b) => a.iteration - b.iteration)) {
      const sizes = await Promise.all([p.model, p.state].map(async (f) => f === undefined ? -1 : await stat(f).then((s) => s.size, () => -2)))
      const key = sizes.join(',')
      if (key !== p.sizes) {
        p.sizes = key
        p.stableSince = now
        if (!this.#exited) continue
      }
      // -2: announced but not (yet) on disk. A model without a state line waits for it until the end.
      if (sizes.includes(-2)) {
        if (!this.#exited) continue
        if (sizes[0] === -2 || p.model === undefined) {
          this.#o.log.warn({ iteration: p.iteration }, 'snapshot announced but its model file is missing; skipped')
          this.#pending.delete(p.iteration)
          continue
        }
        p.state = undefined
      }
      const ready = this.#exited || (p.state !== undefined && (p.laterLine || now - p.stableSince >= quiet))
      if (!ready || p.model === undefined) continue
      try {
        await this.#upload(p.iteration, p.model, p.state ?? null)
        this.#pending.delete(p.iteration)
      } catch (err) {
        this.#lastError = err
        this.#o.log.warn({ err, iteration: p.iteration }, 'snapshot upload failed; will try again')
        return
      }
    }
  }

  async #upload (iteration: number, model: string, state: string | null): Promise<void> {
    const { blobs, jobId } = this.#o
    const modelKey = snapshotKey(jobId, path.basename(model))
    await blobs.put(modelKey, createReadStream(model), { contentType: 'application/octet-stream' })
    let stateUrl: string | null = null
    if (state !== null) {
      const stateKey = snapshotKey(jobId, path.basename(state))
      await blobs.put(stateKey, createReadStream(state), { contentType: 'application/octet-stream' })
      stateUrl = blobUri(stateKey)
    }
    await this.#o.onUploaded({ iteration, 'model-url': blobUri(modelKey), 'state-url': stateUrl }, { model, state })
    this.#uploaded.set(iteration, { model, state })
    this.#o.log.info({ iteration }, 'snapshot uploaded')
    for (const [older, files] of this.#uploaded) {
      if (older >= iteration) continue
      await rm(files.model, { force: true })
      if (files.state !== null) await rm(files.state, { force: true })
    }
  }
}
