import { closeSync, fsyncSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseError } from '../errors.js'
import {
  DEFAULT_PAGE_SIZE, F_BIGDATA, MAX_KEY_SIZE, MAX_PAGE_SIZE, MDB_INTEGERKEY, MIN_PAGE_SIZE, NODE_HEADER_SIZE,
  P_BRANCH, P_LEAF, P_OVERFLOW, PAGE_HEADER_SIZE, emptyDb, isPowerOfTwo, nodeMax, overflowPages,
  writeMeta, writeU16, writeU32, writeU64
} from './lmdb-format.js'
import type { DbRecord, Meta } from './lmdb-format.js'
import type { LmdbStat } from './lmdb-reader.js'

export interface LmdbWriterOptions {
  /** Write `path` itself as the data file instead of `path/data.mdb` (MDB_NOSUBDIR). */
  noSubdir?: boolean
  /** 4096 unless set; liblmdb on x86-64 uses the OS page size, which is 4096. */
  pageSize?: number
  /** mm_mapsize recorded in the meta pages; rounded up to cover the file (liblmdb does the same on open). */
  mapSize?: number
}

const FLUSH_BYTES = 1 << 20
const MIB = 1 << 20

/**
 * Creates a new LMDB database for bulk loading. Fails with DatabaseError if the data file
 * already exists (like Caffe, which refuses to overwrite a DB).
 */
export function createLmdbWriter (path: string, options: LmdbWriterOptions = {}): LmdbWriter {
  let file = path
  if (options.noSubdir !== true) {
    mkdirSync(path, { recursive: true })
    file = join(path, 'data.mdb')
  }
  let exists = true
  try {
    statSync(file)
  } catch {
    exists = false
  }
  if (exists) throw new DatabaseError(`cannot create LMDB database ${path}: ${file} already exists`)
  return new LmdbWriter(file, openSync(file, 'wx'), options)
}

/**
 * Builds a fresh LMDB main DB from records appended in strictly increasing key order (bytewise,
 * like memcmp). Leaves are filled completely and written as they fill, as liblmdb's MDB_APPEND
 * does; branch levels are built bottom-up on close(), then both meta pages are written (txn 0
 * empty, txn 1 the data, which is what a single liblmdb commit leaves behind). Until close()
 * the meta pages are zero, so an interrupted conversion never looks like a valid database.
 */
export class LmdbWriter {
  readonly file: string
  private readonly fd: number
  private readonly ps: number
  private readonly maxNode: number
  private readonly mapSizeOption: number
  private nextPgno = 2
  private out: Uint8Array
  private outLen = 0
  private outStartPgno = 2
  private leaf: Uint8Array
  private lower = PAGE_HEADER_SIZE
  private upper: number
  private leafFirstKey: Uint8Array | undefined
  private lastKey: Uint8Array | undefined
  private readonly children: Array<{ key: Uint8Array, pgno: number }> = []
  private entries = 0
  private leafPages = 0
  private overflowPageCount = 0
  private done = false

  constructor (file: string, fd: number, options: LmdbWriterOptions) {
    const ps = options.pageSize ?? DEFAULT_PAGE_SIZE
    if (!isPowerOfTwo(ps) || ps < MIN_PAGE_SIZE || ps > MAX_PAGE_SIZE) throw new RangeError(`invalid LMDB page size ${ps}`)
    this.file = file
    this.fd = fd
    this.ps = ps
    this.maxNode = nodeMax(ps)
    this.mapSizeOption = options.mapSize ?? 0
    this.out = new Uint8Array(FLUSH_BYTES + ps)
    this.leaf = new Uint8Array(ps)
    this.upper = ps
    // Zeroed meta pages make an unfinished file fail as "not a meta page", never read as empty.
    this.writeAt(new Uint8Array(2 * ps), 0)
  }

  /** Appends one record; throws RangeError if the key is empty, too long or not greater than the last. */
  put (key: Uint8Array, value: Uint8Array): void {
    if (this.done) throw new Error('LMDB writer is closed')
    if (key.length === 0 || key.length > MAX_KEY_SIZE) throw new RangeError(`LMDB key length ${key.length} outside 1..${MAX_KEY_SIZE}`)
    if (value.length > 0xFFFFFFFF) throw new RangeError(`LMDB value of ${value.length} bytes is too large`)
    if (this.lastKey !== undefined && Buffer.compare(key, this.lastKey) <= 0) {
      throw new RangeError(`LMDB keys must be appended in increasing order: "${latin1(key)}" after "${latin1(this.lastKey)}"`)
    }
    // Copied: callers often reuse one key buffer, and the copy doubles as the leaf's first key.
    this.lastKey = key.slice()
    // Same rule and rounding as liblmdb's mdb_leaf_size: nodes are 2-byte aligned and a node
    // over me_nodemax keeps only an 8-byte overflow page number in the leaf.
    const big = NODE_HEADER_SIZE + key.length + value.length > this.maxNode
    const nodeSize = even(NODE_HEADER_SIZE + key.length + (big ? 8 : value.length))
    if (nodeSize + 2 > this.upper - this.lower) this.finishLeaf()
    // Overflow pages are written before the leaf that points at them; LMDB has no page order.
    const ovf = big ? this.writeOverflow(value) : 0
    const o = this.upper - nodeSize
    const b = this.leaf
    writeU32(b, o, value.length)
    writeU16(b, o + 4, big ? F_BIGDATA : 0)
    writeU16(b, o + 6, key.length)
    b.set(key, o + NODE_HEADER_SIZE)
    if (big) writeU64(b, o + NODE_HEADER_SIZE + key.length, ovf)
    else b.set(value, o + NODE_HEADER_SIZE + key.length)
    writeU16(b, this.lower, o)
    this.lower += 2
    this.upper = o
    if (this.leafFirstKey === undefined) this.leafFirstKey = this.lastKey
    this.entries++
  }

  /** Writes the branch pages and meta pages, syncs and closes the file; returns mdb_stat's numbers. */
  close (): LmdbStat {
    if (this.done) throw new Error('LMDB writer is closed')
    try {
      if (this.lower > PAGE_HEADER_SIZE) this.finishLeaf()
      const main = this.buildBranches()
      this.flush()
      const lastPage = this.nextPgno - 1
      const fileBytes = (lastPage + 1) * this.ps
      // liblmdb grows a smaller map to the file size on open; whole MiB keeps mdb_stat tidy.
      const mapSize = Math.max(this.mapSizeOption, Math.ceil(fileBytes / MIB) * MIB)
      const freeDb = emptyDb(MDB_INTEGERKEY)
      const initial: Meta = { pageSize: this.ps, mapSize, lastPage: 1, txnId: 0, freeDb, mainDb: emptyDb() }
      const final: Meta = { pageSize: this.ps, mapSize, lastPage, txnId: 1, freeDb, mainDb: main }
      // Data pages reach the disk before the meta page that makes them visible, as in liblmdb's commit.
      fsyncSync(this.fd)
      const metas = new Uint8Array(2 * this.ps)
      writeMeta(metas, 0, initial)
      writeMeta(metas.subarray(this.ps), 1, final)
      this.writeAt(metas, 0)
      fsyncSync(this.fd)
      return {
        pageSize: this.ps,
        txnId: 1,
        lastPage,
        depth: main.depth,
        branchPages: main.branchPages,
        leafPages: main.leafPages,
        overflowPages: main.overflowPages,
        entries: main.entries
      }
    } finally {
      this.done = true
      closeSync(this.fd)
    }
  }

  /** Closes and deletes the partial file. */
  abort (): void {
    if (this.done) return
    this.done = true
    closeSync(this.fd)
    try {
      unlinkSync(this.file)
    } catch {
      // Already gone: nothing to clean up.
    }
  }

  private finishLeaf (): void {
    const b = this.leaf
    writeU16(b, 10, P_LEAF)
    writeU16(b, 12, this.lower)
    writeU16(b, 14, this.upper)
    const pgno = this.emitPage(b)
    this.children.push({ key: this.leafFirstKey as Uint8Array, pgno })
    this.leafPages++
    b.fill(0)
    this.lower = PAGE_HEADER_SIZE
    this.upper = this.ps
    this.leafFirstKey = undefined
  }

  /** Copies a finished page into the output buffer under the next page number. */
  private emitPage (page: Uint8Array): number {
    const pgno = this.nextPgno++
    writeU64(page, 0, pgno)
    this.out.set(page, this.outLen)
    this.outLen += this.ps
    if (this.outLen >= FLUSH_BYTES) this.flush()
    return pgno
  }

  private writeOverflow (value: Uint8Array): number {
    const n = overflowPages(value.length, this.ps)
    const bytes = n * this.ps
    const head = new Uint8Array(PAGE_HEADER_SIZE)
    const pgno = this.nextPgno
    writeU64(head, 0, pgno)
    writeU16(head, 10, P_OVERFLOW)
    writeU32(head, 12, n)
    if (this.outLen + bytes <= this.out.length) {
      this.out.set(head, this.outLen)
      this.out.set(value, this.outLen + PAGE_HEADER_SIZE)
      this.out.fill(0, this.outLen + PAGE_HEADER_SIZE + value.length, this.outLen + bytes)
      this.outLen += bytes
      this.nextPgno += n
      if (this.outLen >= FLUSH_BYTES) this.flush()
    } else {
      this.flush()
      this.writeAt(head, pgno * this.ps)
      this.writeAt(value, pgno * this.ps + PAGE_HEADER_SIZE)
      const tail = bytes - PAGE_HEADER_SIZE - value.length
      if (tail > 0) this.writeAt(new Uint8Array(tail), pgno * this.ps + PAGE_HEADER_SIZE + value.length)
      this.nextPgno += n
      this.outStartPgno = this.nextPgno
    }
    this.overflowPageCount += n
    return pgno
  }

  private flush (): void {
    if (this.outLen > 0) this.writeAt(this.out.subarray(0, this.outLen), this.outStartPgno * this.ps)
    this.outLen = 0
    this.outStartPgno = this.nextPgno
  }

  private writeAt (data: Uint8Array, position: number): void {
    let done = 0
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, position + done)
  }

  /**
   * Packs the leaf list into branch levels until one page remains: the root. Node 0 of each
   * branch page carries an empty key (liblmdb never compares it); its real first key is the
   * separator one level up.
   */
  private buildBranches (): DbRecord {
    const db = emptyDb()
    db.entries = this.entries
    db.leafPages = this.leafPages
    db.overflowPages = this.overflowPageCount
    if (this.children.length === 0) return db
    let level = this.children
    let depth = 1
    while (level.length > 1) {
      const groups = this.packBranchLevel(level)
      const up: Array<{ key: Uint8Array, pgno: number }> = []
      for (const g of groups) {
        const page = new Uint8Array(this.ps)
        let lower = PAGE_HEADER_SIZE
        let upper = this.ps
        g.forEach((c, i) => {
          const ksize = i === 0 ? 0 : c.key.length
          const o = upper - even(NODE_HEADER_SIZE + ksize)
          writeU16(page, o, c.pgno & 0xFFFF)
          writeU16(page, o + 2, Math.floor(c.pgno / 0x10000) & 0xFFFF)
          writeU16(page, o + 4, Math.floor(c.pgno / 0x100000000) & 0xFFFF)
          writeU16(page, o + 6, ksize)
          if (ksize > 0) page.set(c.key, o + NODE_HEADER_SIZE)
          writeU16(page, lower, o)
          lower += 2
          upper = o
        })
        writeU16(page, 10, P_BRANCH)
        writeU16(page, 12, lower)
        writeU16(page, 14, upper)
        up.push({ key: (g[0] as { key: Uint8Array }).key, pgno: this.emitPage(page) })
        db.branchPages++
      }
      level = up
      depth++
    }
    db.depth = depth
    db.root = (level[0] as { pgno: number }).pgno
    return db
  }

  /** Greedy fill, then keeps the last page from holding a lone child (liblmdb rebalances those). */
  private packBranchLevel (items: Array<{ key: Uint8Array, pgno: number }>): Array<Array<{ key: Uint8Array, pgno: number }>> {
    const room = this.ps - PAGE_HEADER_SIZE
    const groups: Array<Array<{ key: Uint8Array, pgno: number }>> = []
    let cur: Array<{ key: Uint8Array, pgno: number }> = []
    let used = 0
    for (const it of items) {
      const size = even(NODE_HEADER_SIZE + (cur.length === 0 ? 0 : it.key.length)) + 2
      if (cur.length > 0 && used + size > room) {
        groups.push(cur)
        cur = []
        used = 0
      }
      used += cur.length === 0 ? even(NODE_HEADER_SIZE) + 2 : size
      cur.push(it)
    }
    groups.push(cur)
    const n = groups.length
    if (n >= 2 && (groups[n - 1] as unknown[]).length === 1) {
      const prev = groups[n - 2] as Array<{ key: Uint8Array, pgno: number }>
      const moved = prev.pop()
      if (moved !== undefined) (groups[n - 1] as Array<{ key: Uint8Array, pgno: number }>).unshift(moved)
    }
    return groups
  }
}

function even (n: number): number {
  return (n + 1) & ~1
}

function latin1 (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}
