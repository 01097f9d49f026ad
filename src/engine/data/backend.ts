import { DatabaseError } from './errors.js'

/** Caffe's DataParameter.DB values. */
export type Backend = 'LMDB' | 'LEVELDB'

/**
 * Parses a backend name as Caffe's tools spell it (`--backend=lmdb|leveldb`) or as the
 * DataParameter enum does (`LMDB`, `LEVELDB`); anything else is a DatabaseError.
 */
export function parseBackend (name: string): Backend {
  const n = name.toLowerCase()
  if (n === 'lmdb') return 'LMDB'
  if (n === 'leveldb') return 'LEVELDB'
  throw new DatabaseError(`Unknown db backend ${name}`)
}
