import path from 'node:path'
import { Readable } from 'node:stream'
import type { BlobStore } from '../../blobstore/blob-store.js'
import { keyFromBlobUri } from '../../blobstore/blob-uri.js'
import type { TenantId } from '../../models/common.js'
import type { OwnedRepository } from '../db/owned-repository.js'
import { logChunkPrefix, wholeLogKey } from '../jobs/job-logs.js'
import type { LogStream } from '../jobs/job-logs.js'
import { NotFoundError } from '../lib/errors.js'

export type LogJobType = 'training-job' | 'classify-job'

export interface LogRequest {
  stream: LogStream
  /** First byte to send. */
  from: number
  /** Keep the response open and send new output until the job ends. */
  follow: boolean
  /** Aborting ends a follow (the client went away). */
  signal?: AbortSignal
}

/** A stored file ready to send. */
export interface Download {
  body: Readable
  size: number
  fileName: string
}

export interface ArtifactsDeps {
  repo: OwnedRepository
  blobs: BlobStore
  /** How often a follow checks for new output (default 1 s). */
  pollMs?: number
}

interface Segment { key: string, size: number }

/**
 * Reads what jobs stored — logs, the trained model, snapshots — for the job's owner only: the
 * document is read through the tenant-scoped repository first, so another tenant's job is the
 * same 404 as a missing one. Logs are read from the chunk objects a running job writes (see
 * src/jobs/job-logs.ts), or from the whole file when there are none (classify jobs, jobs of
 * older versions); byte offsets are the same in both.
 */
export class Artifacts {
  readonly #repo: OwnedRepository
  readonly #blobs: BlobStore
  readonly #pollMs: number

  constructor (deps: ArtifactsDeps) {
    this.#repo = deps.repo
    this.#blobs = deps.blobs
    this.#pollMs = deps.pollMs ?? 1000
  }

  /**
   * A job's stdout or stderr from byte `from`. Without follow it is what is stored now; with
   * follow the stream stays open while the job is pending or processing and ends once it has
   * ended and everything it wrote has been sent (or the job is deleted, or `signal` aborts).
   */
  async jobLog (tenant: TenantId, type: LogJobType, id: string, request: LogRequest): Promise<Readable> {
    await this.#repo.get(tenant, type, id)
    const { stream, follow, signal } = request
    let offset = request.from
    const active = async (): Promise<boolean> => {
      try {
        const doc = await this.#repo.get(tenant, type, id)
        return doc['processing-state'] === 'pending' || doc['processing-state'] === 'processing'
      } catch (err) {
        if (err instanceof NotFoundError) return false
        throw err
      }
    }
    const blobs = this.#blobs
    const segments = async (): Promise<Segment[]> => await this.#segments(id, stream)
    const pollMs = this.#pollMs
    async function * read (): AsyncGenerator<Buffer> {
      for (;;) {
        // The state is read BEFORE the chunks: a job that has ended stored its last chunk before
        // its final state, so this last listing holds everything.
        const more = follow && await active()
        let start = 0
        for (const seg of await segments()) {
          const end = start + seg.size
          if (end > offset) {
            let body: Readable
            try {
              body = await blobs.get(seg.key, { start: Math.max(0, offset - start), ...(signal === undefined ? {} : { signal }) })
            } catch (err) {
              // Deleted under us (the job was deleted); whatever was sent stays sent.
              if (err instanceof NotFoundError) return
              throw err
            }
            for await (const chunk of body) {
              offset += (chunk as Buffer).length
              yield chunk as Buffer
            }
          }
          start = end
        }
        if (!more || signal?.aborted === true) return
        await sleep(pollMs, signal)
      }
    }
    return Readable.from(read(), { objectMode: false })
  }

  /** The trained .caffemodel of a finished training job. */
  async trainedModel (tenant: TenantId, id: string): Promise<Download> {
    const job = await this.#repo.get(tenant, 'training-job', id)
    const url = job['trained-model-url']
    if (url === null) throw new NotFoundError(`training job ${id} has no trained model (it is ${job['processing-state']})`)
    return await this.#download(url, `${id}.caffemodel`, `the trained model of training job ${id}`)
  }

  /** A snapshot file (`snapshot_iter_N.caffemodel` or `.solverstate`) listed in the job's `snapshots`. */
  async snapshot (tenant: TenantId, id: string, name: string): Promise<Download> {
    const job = await this.#repo.get(tenant, 'training-job', id)
    for (const snap of job.snapshots) {
      for (const url of [snap['model-url'], snap['state-url']]) {
        if (url !== null && path.posix.basename(url) === name) return await this.#download(url, `${id}-${name}`, `snapshot ${name} of training job ${id}`)
      }
    }
    throw new NotFoundError(`training job ${id} has no snapshot named '${name}'`)
  }

  async #download (url: string, fileName: string, what: string): Promise<Download> {
    const key = keyFromBlobUri(url)
    try {
      const { size } = await this.#blobs.stat(key)
      return { body: await this.#blobs.get(key), size, fileName }
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`${what} is missing from the blob store`)
      throw err
    }
  }

  async #segments (id: string, stream: LogStream): Promise<Segment[]> {
    const chunks = await this.#blobs.list(logChunkPrefix(id, stream))
    if (chunks.length > 0) return chunks
    const key = wholeLogKey(id, stream)
    try {
      return [{ key, size: (await this.#blobs.stat(key)).size }]
    } catch (err) {
      if (err instanceof NotFoundError) return []
      throw err
    }
  }
}

async function sleep (ms: number, signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
