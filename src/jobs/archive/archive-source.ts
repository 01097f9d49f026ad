import { createGunzip } from 'node:zlib'
import { pipeline } from 'node:stream/promises'
import { ArchiveError } from './archive-error.js'
import { formatBytes } from './archive-limits.js'
import type { ArchiveLimits } from './archive-limits.js'

/** Anything that yields the archive's bytes: a Readable, a blob-store body, an async generator. */
export type ArchiveInput = AsyncIterable<Uint8Array>

/** What has streamed by so far; final once the tar stream has been read to its end. */
export interface ArchiveStats {
  compression: 'gzip' | 'none'
  /** Bytes read from the input. */
  compressedBytes: number
  /** Bytes of the uncompressed tar stream. */
  bytes: number
}

/** The uncompressed tar bytes of an input, with limits applied as they stream. */
export interface ArchiveSource {
  readonly stats: ArchiveStats
  readonly chunks: AsyncIterable<Buffer>
}

interface Destroyable { destroy: (err?: Error) => unknown }

function isDestroyable (value: unknown): value is Destroyable {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'destroy') === 'function'
}

function zlibCode (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code: unknown = Reflect.get(err, 'code')
  return typeof code === 'string' ? code : undefined
}

/**
 * Sniffs the input (gzip or not), decompresses it and counts both sides. Input errors (a reset
 * download) propagate unchanged so a job can retry them; bad data becomes an ArchiveError.
 * Abandoning `chunks` early (break, throw) releases the decompressor and the input.
 */
export async function openArchiveSource (input: ArchiveInput, limits: ArchiveLimits, signal?: AbortSignal): Promise<ArchiveSource> {
  signal?.throwIfAborted()
  const it = input[Symbol.asyncIterator]()
  let inputError: { error: unknown } | undefined
  let inputDone = false
  // A stalled download must not hold an aborted job: destroy() of some streams waits for
  // their pending read, so each read is also raced against the signal.
  let rejectRead: ((reason: unknown) => void) | undefined
  const aborted = signal === undefined ? undefined : new Promise<never>((resolve, reject) => { rejectRead = reject })
  aborted?.catch(() => {})
  const onAbort = (): void => {
    rejectRead?.(signal?.reason)
    if (isDestroyable(input)) input.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
  }
  signal?.addEventListener('abort', onAbort, { once: true })

  const pull = async (): Promise<Buffer | undefined> => {
    try {
      const r = await (aborted === undefined ? it.next() : Promise.race([it.next(), aborted]))
      if (r.done === true) {
        inputDone = true
        return undefined
      }
      return Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength)
    } catch (error) {
      inputError = { error: signal?.aborted === true ? signal.reason : error }
      throw inputError.error
    }
  }

  const initial: Buffer[] = []
  let have = 0
  try {
    while (have < 2) {
      const c = await pull()
      if (c === undefined) break
      initial.push(c)
      have += c.length
    }
    if (have === 0) throw new ArchiveError('empty', 'the file is empty (0 bytes)')
  } catch (err) {
    signal?.removeEventListener('abort', onAbort)
    throw err
  }
  const first = initial[0] as Buffer
  const gzip = first[0] === 0x1f && (first.length > 1 ? first[1] : initial[1]?.[0]) === 0x8b
  const stats: ArchiveStats = { compression: gzip ? 'gzip' : 'none', compressedBytes: 0, bytes: 0 }

  async function * raw (): AsyncGenerator<Buffer> {
    try {
      for (const c of initial) {
        stats.compressedBytes += c.length
        yield c
      }
      initial.length = 0
      for (let c = await pull(); c !== undefined; c = await pull()) {
        stats.compressedBytes += c.length
        yield c
      }
    } finally {
      // Stopped early (a limit, a bad entry): let go of the input too.
      if (!inputDone && inputError === undefined) await it.return?.()
    }
  }

  const translate = (err: unknown): unknown => {
    if (inputError !== undefined) return inputError.error
    if (err instanceof ArchiveError) return err
    if (signal?.aborted === true) return signal.reason
    const code = zlibCode(err)
    if (code === 'Z_BUF_ERROR') {
      return new ArchiveError('truncated', 'the archive is truncated: the gzip stream ends early (was the download interrupted?)', { cause: err })
    }
    if (code !== undefined && code.startsWith('Z_')) {
      return new ArchiveError('corrupt', `the gzip data is corrupt (${(err as Error).message})`, { cause: err })
    }
    return err
  }

  async function * counted (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of chunks) {
        stats.bytes += chunk.length
        if (stats.bytes > limits.maxBytes) {
          throw new ArchiveError('too-large', `the archive expands to more than ${formatBytes(limits.maxBytes)}, the limit for one datafile`)
        }
        // The compressed count runs ahead of what zlib has consumed, so this errs on the lenient side.
        if (gzip && stats.bytes > limits.ratioGraceBytes && stats.bytes > limits.maxRatio * stats.compressedBytes) {
          throw new ArchiveError('compression-ratio', `the archive expands to more than ${limits.maxRatio} times its compressed size, which looks like a decompression bomb`)
        }
        signal?.throwIfAborted()
        yield chunk
      }
    } catch (err) {
      throw translate(err)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  if (!gzip) return { stats, chunks: counted(raw()) }
  const gunzip = createGunzip({ chunkSize: 64 * 1024 })
  // Failures surface through gunzip's iterator (pipeline destroys it with the cause).
  pipeline(raw(), gunzip).catch(() => {})
  return { stats, chunks: counted(gunzip) }
}
