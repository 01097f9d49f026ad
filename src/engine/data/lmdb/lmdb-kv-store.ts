import { rmdirSync } from 'node:fs'
import type { KvCursor, KvReader, KvWriter } from '../kv-store.js'
import { openLmdb } from './lmdb-reader.js'
import type { LmdbCursor, LmdbReader } from './lmdb-reader.js'
import { createLmdbWriter } from './lmdb-writer.js'
import type { LmdbWriter } from './lmdb-writer.js'
import { DatabaseError } from '../errors.js'

/**
 * KvReader over the pure-TypeScript LMDB reader; every call completes synchronously underneath,
 * so the promises only adapt it to the shared interface.
 */
export class LmdbKvReader implements KvReader {
  readonly backend = 'LMDB' as const
  readonly path: string
  readonly lmdb: LmdbReader

  private constructor (path: string, lmdb: LmdbReader) {
    this.path = path
    this.lmdb = lmdb
  }

  static async open (path: string): Promise<LmdbKvReader> {
    return new LmdbKvReader(path, openLmdb(path))
  }

  async count (): Promise<number> {
    return this.lmdb.count
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.lmdb.get(key)
  }

  cursor (): KvCursor {
    return new LmdbKvCursor(this.lmdb.cursor())
  }

  async close (): Promise<void> {
    this.lmdb.close()
  }
}

class LmdbKvCursor implements KvCursor {
  private readonly c: LmdbCursor

  constructor (c: LmdbCursor) {
    this.c = c
  }

  async first (): Promise<boolean> { return this.c.first() }
  async next (): Promise<boolean> { return this.c.next() }
  async seek (key: Uint8Array): Promise<boolean> { return this.c.seek(key) }
  get key (): Uint8Array { return this.c.key }
  get value (): Uint8Array { return this.c.value }
  async close (): Promise<void> {}
}

/** KvWriter over the bulk-loading LMDB writer (keys must arrive sorted). */
export class LmdbKvWriter implements KvWriter {
  readonly backend = 'LMDB' as const
  readonly path: string
  private readonly w: LmdbWriter

  private constructor (path: string, w: LmdbWriter) {
    this.path = path
    this.w = w
  }

  static async create (path: string): Promise<LmdbKvWriter> {
    try {
      return new LmdbKvWriter(path, createLmdbWriter(path))
    } catch (err) {
      if (err instanceof DatabaseError) throw err
      throw new DatabaseError(`cannot create LMDB database ${path}: ${(err as Error).message}`, { cause: err })
    }
  }

  async put (key: Uint8Array, value: Uint8Array): Promise<void> {
    this.w.put(key, value)
  }

  async close (): Promise<void> {
    this.w.close()
  }

  async abort (): Promise<void> {
    // Only an empty directory is removed: it may have existed, and held other files, before us.
    this.w.abort()
    try {
      rmdirSync(this.path)
    } catch {
      // The directory holds other files or is already gone; leave it.
    }
  }
}
