import { PassThrough, Readable, Transform, addAbortSignal } from 'node:stream'
import { NotFoundError, ValidationError } from '../src/lib/errors.js'
import type { BlobBody, BlobGetOptions } from './blob-store.js'

// Big in-memory bodies are written in slices so an abort is noticed between them.
const SLICE = 1024 * 1024

/**
 * Yields a put body as byte chunks, honouring `signal`. A stream body is destroyed when
 * the iteration ends early (abort, write failure), as `stream.pipeline` would.
 */
export async function * bodyChunks (body: BlobBody, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted()
  if (typeof body === 'string') {
    yield Buffer.from(body, 'utf8')
    return
  }
  if (body instanceof Uint8Array) {
    for (let offset = 0; offset < body.byteLength; offset += SLICE) {
      signal?.throwIfAborted()
      yield body.subarray(offset, Math.min(offset + SLICE, body.byteLength))
    }
    return
  }
  if (!isReadable(body)) throw new ValidationError('blob body must be a Readable, a Uint8Array or a string')
  if (signal !== undefined) addAbortSignal(signal, body)
  for await (const chunk of body as AsyncIterable<unknown>) {
    if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8')
    else if (chunk instanceof Uint8Array) yield chunk
    else throw new ValidationError('blob body stream must yield bytes or strings')
  }
  signal?.throwIfAborted()
}

function isReadable (value: unknown): value is Readable {
  return value instanceof Readable ||
    (typeof value === 'object' && value !== null && typeof Reflect.get(value, Symbol.asyncIterator) === 'function')
}

/** A byte stream over `bodyChunks` that counts what went through it. */
export function countingStream (body: BlobBody, signal?: AbortSignal): { stream: Readable, bytes: () => number } {
  let bytes = 0
  async function * counted (): AsyncGenerator<Uint8Array> {
    for await (const chunk of bodyChunks(body, signal)) {
      bytes += chunk.byteLength
      yield chunk
    }
  }
  return { stream: Readable.from(counted(), { objectMode: false }), bytes: () => bytes }
}

/** Aborts normalise to the signal's reason, whatever layer noticed first. */
export function abortReasonOr (signal: AbortSignal | undefined, err: unknown): unknown {
  return signal?.aborted === true ? signal.reason : err
}

/** A validated read range in bytes. */
export interface ByteRange {
  start: number
  /** Inclusive; undefined means "to the end". */
  end: number | undefined
}

/** Validates get options; ValidationError for negative, fractional or inverted ranges. */
export function byteRange (options: BlobGetOptions | undefined): ByteRange {
  const start = options?.start ?? 0
  const end = options?.end
  if (!Number.isSafeInteger(start) || start < 0) throw new ValidationError(`range start must be a non-negative integer, got ${String(start)}`)
  if (end !== undefined) {
    if (!Number.isSafeInteger(end) || end < 0) throw new ValidationError(`range end must be a non-negative integer, got ${String(end)}`)
    if (end < start) throw new ValidationError(`range end ${end} is before start ${start}`)
  }
  return { start, end }
}

export function isWholeRange (range: ByteRange): boolean {
  return range.start === 0 && range.end === undefined
}

export function emptyStream (): Readable {
  return new PassThrough().end()
}

/** Attaches `signal` to a returned stream so aborting destroys it. */
export function withSignal<T extends Readable> (stream: T, signal: AbortSignal | undefined): T {
  return signal === undefined ? stream : addAbortSignal(signal, stream)
}

/**
 * Cuts `range` out of a stream that starts at byte 0: for servers that answer a Range
 * request with the whole body (200 instead of 206).
 */
export function sliceStream (source: Readable, range: ByteRange): Readable {
  let position = 0
  let done = false
  const slicer = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      if (done) {
        callback()
        return
      }
      const chunkStart = position
      position += chunk.length
      const from = Math.max(range.start - chunkStart, 0)
      const to = range.end === undefined ? chunk.length : Math.min(range.end + 1 - chunkStart, chunk.length)
      if (to > from) this.push(chunk.subarray(from, to))
      if (range.end !== undefined && position > range.end) {
        done = true
        this.push(null)
        source.destroy()
      }
      callback()
    }
  })
  // Destroying the source once the range is complete makes some sources (undici bodies)
  // emit an abort error; by then the slice is whole, so only earlier errors count.
  source.on('error', (err) => { if (!done) slicer.destroy(err) })
  return source.pipe(slicer)
}

/** `exists` for stores that learn it from `stat`: NotFoundError means no, any other error is thrown. */
export async function existsByStat (stat: () => Promise<unknown>): Promise<boolean> {
  try {
    await stat()
    return true
  } catch (err) {
    if (err instanceof NotFoundError) return false
    throw err
  }
}
