import { existsSync, rmSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { ClassicLevel } from 'classic-level'
import type { KvCursor, KvReader, KvWriter } from './kv-store.js'
import { DatabaseError } from './errors.js'

type Db = ClassicLevel<Uint8Array, Uint8Array>
/** The part of classic-level's iterator this file uses (its overloaded types defeat ReturnType). */
interface Iter {
  nextv (size: number): Promise<Array<[Uint8Array, Uint8Array]>>
  close (): Promise<void>
}

const ENCODINGS = { keyEncoding: 'view', valueEncoding: 'view' } as const
const READ_AHEAD = 256
// Caffe's db_leveldb.cpp settings for new databases.
const WRITE_OPTIONS = { blockSize: 65536, writeBufferSize: 64 * 1024 * 1024, maxOpenFiles: 100 }
const BATCH = 1000

/**
 * LevelDB holds an exclusive LOCK per directory, but Caffe nets often read one source from
 * both the TRAIN and TEST net in the same process; readers of one path therefore share a handle.
 */
const shared = new Map<string, { db: Db, refs: number, opening: Promise<void> }>()

async function acquire (path: string): Promise<Db> {
  const key = resolve(path)
  let entry = shared.get(key)
  if (entry === undefined) {
    if (!existsSync(path)) throw new DatabaseError(`cannot open LevelDB database ${path}: no such file or directory`)
    if (!statSync(path).isDirectory()) throw new DatabaseError(`cannot open LevelDB database ${path}: not a directory`)
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(path, ENCODINGS)
    const opening = db.open({ createIfMissing: false, passive: false })
    entry = { db, refs: 0, opening }
    shared.set(key, entry)
    try {
      await opening
    } catch (err) {
      shared.delete(key)
      throw new DatabaseError(`cannot open LevelDB database ${path}: ${describe(err)}`, { cause: err })
    }
  } else {
    try {
      await entry.opening
    } catch (err) {
      throw new DatabaseError(`cannot open LevelDB database ${path}: ${describe(err)}`, { cause: err })
    }
  }
  entry.refs++
  return entry.db
}

async function release (path: string): Promise<void> {
  const key = resolve(path)
  const entry = shared.get(key)
  if (entry === undefined) return
  if (--entry.refs > 0) return
  shared.delete(key)
  await entry.db.close()
}

/** KvReader over classic-level (Google LevelDB, the library Caffe links). */
export class LevelKvReader implements KvReader {
  readonly backend = 'LEVELDB' as const
  readonly path: string
  private readonly db: Db
  private counted: number | undefined
  private closed = false

  private constructor (path: string, db: Db) {
    this.path = path
    this.db = db
  }

  static async open (path: string): Promise<LevelKvReader> {
    return new LevelKvReader(path, await acquire(path))
  }

  async count (): Promise<number> {
    // LevelDB keeps no record count; a key-only scan is the cheapest exact answer.
    if (this.counted !== undefined) return this.counted
    const it = this.db.keys({ keyEncoding: 'view' })
    let n = 0
    try {
      for (;;) {
        const batch = await it.nextv(4096)
        if (batch.length === 0) break
        n += batch.length
      }
    } finally {
      await it.close()
    }
    this.counted = n
    return n
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.db.get(key)
  }

  cursor (): KvCursor {
    return new LevelKvCursor(this.db)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await release(this.path)
  }
}

/** Reads ahead in batches with nextv() so the per-record cost is an array index, not a native call. */
class LevelKvCursor implements KvCursor {
  private readonly db: Db
  private it: Iter | undefined
  private buf: Array<[Uint8Array, Uint8Array]> = []
  private pos = 0
  private exhausted = false
  private current: [Uint8Array, Uint8Array] | undefined

  constructor (db: Db) {
    this.db = db
  }

  async first (): Promise<boolean> {
    await this.restart(undefined)
    return this.advance()
  }

  async next (): Promise<boolean> {
    if (this.current === undefined) return false
    return this.advance()
  }

  async seek (key: Uint8Array): Promise<boolean> {
    await this.restart(key)
    return this.advance()
  }

  get key (): Uint8Array {
    if (this.current === undefined) throw new Error('LevelDB cursor is not positioned on a record')
    return this.current[0]
  }

  get value (): Uint8Array {
    if (this.current === undefined) throw new Error('LevelDB cursor is not positioned on a record')
    return this.current[1]
  }

  async close (): Promise<void> {
    const it = this.it
    this.it = undefined
    this.current = undefined
    if (it !== undefined) await it.close()
  }

  private async restart (from: Uint8Array | undefined): Promise<void> {
    // A fresh iterator also takes a fresh implicit snapshot, like Caffe's SeekToFirst().
    await this.close()
    this.it = from === undefined ? this.db.iterator<Uint8Array, Uint8Array>(ENCODINGS) : this.db.iterator<Uint8Array, Uint8Array>({ ...ENCODINGS, gte: from })
    this.buf = []
    this.pos = 0
    this.exhausted = false
  }

  private async advance (): Promise<boolean> {
    if (this.pos >= this.buf.length) {
      if (this.exhausted || this.it === undefined) {
        this.current = undefined
        return false
      }
      // nextv may return fewer than asked (it also caps bytes); only an empty batch means the end.
      this.buf = await this.it.nextv(READ_AHEAD)
      this.pos = 0
      if (this.buf.length === 0) {
        this.exhausted = true
        this.current = undefined
        return false
      }
    }
    this.current = this.buf[this.pos++]
    return true
  }
}

/** KvWriter over classic-level; commits every 1000 puts, as convert_imageset does. */
export class LevelKvWriter implements KvWriter {
  readonly backend = 'LEVELDB' as const
  readonly path: string
  private readonly db: Db
  private batch: ReturnType<Db['batch']>
  private pending = 0

  private constructor (path: string, db: Db) {
    this.path = path
    this.db = db
    this.batch = db.batch()
  }

  static async create (path: string): Promise<LevelKvWriter> {
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(path, ENCODINGS)
    try {
      await db.open({ createIfMissing: true, errorIfExists: true, ...WRITE_OPTIONS })
    } catch (err) {
      throw new DatabaseError(`cannot create LevelDB database ${path}: ${describe(err)}`, { cause: err })
    }
    return new LevelKvWriter(path, db)
  }

  async put (key: Uint8Array, value: Uint8Array): Promise<void> {
    // The batch keeps references, and callers may reuse their buffers.
    this.batch.put(key.slice(), value.slice())
    if (++this.pending >= BATCH) await this.commit()
  }

  async close (): Promise<void> {
    await this.commit()
    await this.batch.close()
    await this.db.close()
  }

  async abort (): Promise<void> {
    await this.batch.close()
    await this.db.close()
    // errorIfExists guaranteed the directory is ours alone.
    rmSync(this.path, { recursive: true, force: true })
  }

  private async commit (): Promise<void> {
    if (this.pending === 0) return
    await this.batch.write()
    this.batch = this.db.batch()
    this.pending = 0
  }
}

function describe (err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined
  return cause ?? (err instanceof Error ? err.message : String(err))
}
