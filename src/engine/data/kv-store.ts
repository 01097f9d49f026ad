import { assertNever } from '../../lib/assert-never.js'
import type { Backend } from './backend.js'
import { LmdbKvReader, LmdbKvWriter } from './lmdb/lmdb-kv-store.js'
import { LevelKvReader, LevelKvWriter } from './level-kv-store.js'

/**
 * A position in an ordered key/value database. `first`/`next`/`seek` resolve false when no
 * record is there; `key`/`value` are only valid after a true result and until the next move,
 * and must not be modified.
 */
export interface KvCursor {
  first (): Promise<boolean>
  next (): Promise<boolean>
  /** Moves to the first key >= `key` (bytewise order). */
  seek (key: Uint8Array): Promise<boolean>
  readonly key: Uint8Array
  readonly value: Uint8Array
  close (): Promise<void>
}

/** A database opened read-only. Open failures throw DatabaseError or LmdbFormatError naming the path. */
export interface KvReader {
  readonly backend: Backend
  readonly path: string
  /** Number of records (LMDB: from the meta page; LevelDB: one key scan, then cached). */
  count (): Promise<number>
  get (key: Uint8Array): Promise<Uint8Array | undefined>
  cursor (): KvCursor
  close (): Promise<void>
}

/**
 * A new database being filled. LMDB requires keys in strictly increasing order (RangeError
 * otherwise); LevelDB accepts any order. Nothing is readable until `close()` resolves.
 */
export interface KvWriter {
  readonly backend: Backend
  readonly path: string
  put (key: Uint8Array, value: Uint8Array): Promise<void>
  close (): Promise<void>
  /** Stops and removes what was written. */
  abort (): Promise<void>
}

export async function openKvReader (path: string, backend: Backend): Promise<KvReader> {
  switch (backend) {
    case 'LMDB': return LmdbKvReader.open(path)
    case 'LEVELDB': return LevelKvReader.open(path)
    default: return assertNever(backend, 'unknown database backend')
  }
}

/** Creates a new database; fails with DatabaseError if one already exists at `path` (as Caffe's tools do). */
export async function createKvWriter (path: string, backend: Backend): Promise<KvWriter> {
  switch (backend) {
    case 'LMDB': return LmdbKvWriter.create(path)
    case 'LEVELDB': return LevelKvWriter.create(path)
    default: return assertNever(backend, 'unknown database backend')
  }
}
