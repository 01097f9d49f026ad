import { decodeDatum, encodeDatum } from '../proto/binary.js'
import type { Datum } from '../proto/caffe.js'
import type { Backend } from './backend.js'
import { DatabaseError } from './errors.js'
import { createKvWriter, openKvReader } from './kv-store.js'
import type { KvCursor, KvReader, KvWriter } from './kv-store.js'

/** Caffe's data layer message when its cursor runs off the end and starts over. */
export const RESTART_MESSAGE = 'Restarting data prefetching from start.'

export interface DatumSourceOptions {
  /** Called each time the cursor wraps from the last record to the first (Caffe logs RESTART_MESSAGE then). */
  onRestart?: () => void
}

/**
 * Datums from an LMDB or LevelDB database, read in key order forever: after the last record the
 * cursor goes back to the first, as Caffe's DataLayer::Next does. Decoded Datums alias the
 * database's buffers (`data` is a view) and must be treated as read-only. Opening fails with
 * DatabaseError for a missing path or an empty database, LmdbFormatError for a file that is not LMDB.
 */
export interface DatumSource {
  readonly path: string
  readonly backend: Backend
  count (): Promise<number>
  /** The current record's value, then advances (wrapping). */
  nextRaw (): Promise<Uint8Array>
  next (): Promise<Datum>
  /** The record next() would return, without advancing (Caffe reads it to shape the top blob). */
  peek (): Promise<Datum>
  /** Key of the record next() would return. */
  peekKey (): Uint8Array
  /** Advances `n` records, wrapping (DataParameter.rand_skip). */
  skip (n: number): Promise<void>
  /** Back to the first record. */
  reset (): Promise<void>
  close (): Promise<void>
}

/** Writes Datums (or already-encoded values) under string or byte keys; see KvWriter for ordering rules. */
export interface DatumSink {
  readonly path: string
  readonly backend: Backend
  /** Records written so far. */
  readonly count: number
  put (key: string | Uint8Array, value: Datum | Uint8Array): Promise<void>
  close (): Promise<void>
  abort (): Promise<void>
}

export async function openDatumSource (path: string, backend: Backend, options: DatumSourceOptions = {}): Promise<DatumSource> {
  const reader = await openKvReader(path, backend)
  try {
    const cursor = reader.cursor()
    if (!(await cursor.first())) throw new DatabaseError(`database ${path} (${backend}) is empty`)
    return new KvDatumSource(reader, cursor, options)
  } catch (err) {
    await reader.close()
    throw err
  }
}

export async function createDatumSink (path: string, backend: Backend): Promise<DatumSink> {
  return new KvDatumSink(await createKvWriter(path, backend))
}

class KvDatumSource implements DatumSource {
  readonly path: string
  readonly backend: Backend
  private readonly reader: KvReader
  private readonly cursor: KvCursor
  private readonly onRestart: (() => void) | undefined

  constructor (reader: KvReader, cursor: KvCursor, options: DatumSourceOptions) {
    this.path = reader.path
    this.backend = reader.backend
    this.reader = reader
    this.cursor = cursor
    this.onRestart = options.onRestart
  }

  async count (): Promise<number> {
    return this.reader.count()
  }

  async nextRaw (): Promise<Uint8Array> {
    const value = this.cursor.value
    await this.advance()
    return value
  }

  async next (): Promise<Datum> {
    return decodeDatum(await this.nextRaw(), { alias: true })
  }

  async peek (): Promise<Datum> {
    return decodeDatum(this.cursor.value, { alias: true })
  }

  peekKey (): Uint8Array {
    return this.cursor.key
  }

  async skip (n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.advance()
  }

  async reset (): Promise<void> {
    await this.cursor.first()
  }

  async close (): Promise<void> {
    await this.cursor.close()
    await this.reader.close()
  }

  private async advance (): Promise<void> {
    if (await this.cursor.next()) return
    this.onRestart?.()
    if (!(await this.cursor.first())) throw new DatabaseError(`database ${this.path} (${this.backend}) became empty while reading`)
  }
}

class KvDatumSink implements DatumSink {
  readonly path: string
  readonly backend: Backend
  count = 0
  private readonly writer: KvWriter

  constructor (writer: KvWriter) {
    this.path = writer.path
    this.backend = writer.backend
    this.writer = writer
  }

  async put (key: string | Uint8Array, value: Datum | Uint8Array): Promise<void> {
    const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
    const v = value instanceof Uint8Array ? value : encodeDatum(value)
    await this.writer.put(k, v)
    this.count++
  }

  async close (): Promise<void> {
    await this.writer.close()
  }

  async abort (): Promise<void> {
    await this.writer.abort()
  }
}
