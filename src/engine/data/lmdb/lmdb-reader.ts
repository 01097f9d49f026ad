import { fstatSync, openSync, readSync, closeSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseError, LmdbFormatError, LmdbUnsupportedError } from '../errors.js'
import {
  F_BIGDATA, F_DUPDATA, F_SUBDATA, MAX_DEPTH, MDB_DUPFIXED, MDB_DUPSORT, MDB_INTEGERDUP, MDB_INTEGERKEY,
  MDB_REVERSEDUP, MDB_REVERSEKEY, NODE_HEADER_SIZE, NO_PAGE, P_BRANCH, P_LEAF, P_LEAF2, P_META, P_OVERFLOW,
  P_SUBP, PAGE_HEADER_SIZE, DEFAULT_PAGE_SIZE, META_SIZE, overflowPages, parseMeta, readU16, readU32, readU64
} from './lmdb-format.js'
import type { Meta } from './lmdb-format.js'
import { PageFile } from './page-file.js'

export interface LmdbReaderOptions {
  /** Bytes of file cached in memory (default 8 MiB). */
  cacheBytes?: number
}

/** mdb_stat's numbers for the main DB, plus the environment's. */
export interface LmdbStat {
  pageSize: number
  txnId: number
  lastPage: number
  depth: number
  branchPages: number
  leafPages: number
  overflowPages: number
  entries: number
}

/** A parsed, validated branch or leaf page. */
interface Page {
  readonly pgno: number
  readonly leaf: boolean
  readonly buf: Uint8Array
  readonly numKeys: number
}

const TYPE_BITS = P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2 | P_SUBP
const UNSUPPORTED_DB_FLAGS = MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP
const PARSED_PAGE_CACHE = 256

/**
 * Opens an LMDB environment read-only: a directory holding data.mdb, or the data file itself
 * (MDB_NOSUBDIR). Throws LmdbFormatError (`not an LMDB database: …`) for anything that is not a
 * valid v1 file, LmdbUnsupportedError for dupsort/sub-database/v2 files, DatabaseError when the
 * path does not exist.
 */
export function openLmdb (path: string, options: LmdbReaderOptions = {}): LmdbReader {
  let file = path
  let st
  try {
    st = statSync(path)
  } catch (err) {
    throw new DatabaseError(`cannot open LMDB database ${path}: no such file or directory`, { cause: err })
  }
  if (st.isDirectory()) {
    file = join(path, 'data.mdb')
    try {
      statSync(file)
    } catch {
      throw new LmdbFormatError(path, 'directory contains no data.mdb')
    }
  }
  const fd = openSync(file, 'r')
  try {
    return new LmdbReader(file, fd, options)
  } catch (err) {
    closeSync(fd)
    throw err
  }
}

/**
 * A read-only view of one LMDB file's main DB at its newest committed transaction. Reads are
 * positional with a small block cache; every page is checked (page number, type, offsets,
 * bounds) before use, and descent is bounded by the recorded depth, so a corrupt file fails with
 * LmdbFormatError rather than hanging or crashing. Does not take a reader slot in lock.mdb:
 * do not read a database another process is writing.
 */
export class LmdbReader {
  readonly file: string
  readonly pageSize: number
  readonly meta: Meta
  private readonly pf: PageFile
  private readonly pages = new Map<number, Page>()

  constructor (file: string, fd: number, options: LmdbReaderOptions) {
    this.file = file
    const size = fstatSync(fd).size
    if (size === 0) throw new LmdbFormatError(file, 'file is empty')
    this.meta = pickMeta(file, fd, size)
    this.pageSize = this.meta.pageSize
    // Leaves of a bulk-loaded or append-written DB are contiguous, so reading 32 pages at a time
    // turns a sequential epoch into a few hundred syscalls instead of one per page.
    const blockSize = Math.max(this.pageSize, 128 * 1024)
    this.pf = new PageFile(fd, size, blockSize, Math.floor((options.cacheBytes ?? 8 * 1024 * 1024) / blockSize))
    const flags = this.meta.mainDb.flags
    if ((flags & UNSUPPORTED_DB_FLAGS) !== 0) {
      throw new LmdbUnsupportedError(file, `main DB flags 0x${flags.toString(16)} (dupsort/integer/reverse keys) are not supported; Caffe writes plain keys`)
    }
    // Fail at open, not at the first batch, when the root is missing (the usual truncation).
    if (this.meta.mainDb.root !== NO_PAGE) this.page(this.meta.mainDb.root, 0)
  }

  /** Number of records (md_entries), without scanning. */
  get count (): number {
    return this.meta.mainDb.entries
  }

  stat (): LmdbStat {
    const m = this.meta
    const db = m.mainDb
    return {
      pageSize: m.pageSize,
      txnId: m.txnId,
      lastPage: m.lastPage,
      depth: db.depth,
      branchPages: db.branchPages,
      leafPages: db.leafPages,
      overflowPages: db.overflowPages,
      entries: db.entries
    }
  }

  cursor (): LmdbCursor {
    return new LmdbCursor(this)
  }

  /** The value stored under `key`, or undefined. */
  get (key: Uint8Array): Uint8Array | undefined {
    const c = this.cursor()
    if (!c.seek(key)) return undefined
    return Buffer.compare(c.key, key) === 0 ? c.value : undefined
  }

  close (): void {
    this.pages.clear()
    this.pf.close()
  }

  /** @internal Loads and validates page `pgno` found at tree level `level` (root = 0). */
  page (pgno: number, level: number): Page {
    const cached = this.pages.get(pgno)
    const depth = this.meta.mainDb.depth
    const wantLeaf = level === depth - 1
    if (cached !== undefined) {
      if (cached.leaf !== wantLeaf) this.corrupt(`page ${pgno} is a ${cached.leaf ? 'leaf' : 'branch'} at tree level ${level} of ${depth}`)
      return cached
    }
    const buf = this.rawPage(pgno)
    const type = readU16(buf, 10) & TYPE_BITS
    if (type === P_LEAF2 || type === (P_LEAF | P_LEAF2) || (type & P_SUBP) !== 0) {
      throw new LmdbUnsupportedError(this.file, `page ${pgno} is a dupsort page; sorted-duplicate databases are not supported`)
    }
    if (type !== P_BRANCH && type !== P_LEAF) this.corrupt(`page ${pgno} has type flags 0x${type.toString(16)} where a branch or leaf page belongs`)
    const leaf = type === P_LEAF
    if (leaf !== wantLeaf) this.corrupt(`page ${pgno} is a ${leaf ? 'leaf' : 'branch'} at tree level ${level} of ${depth}`)
    const ps = this.pageSize
    const lower = readU16(buf, 12)
    const upper = readU16(buf, 14)
    if (lower < PAGE_HEADER_SIZE || (lower & 1) !== 0 || upper < lower || upper > ps) {
      this.corrupt(`page ${pgno} has bad free-space bounds lower=${lower} upper=${upper}`)
    }
    const numKeys = (lower - PAGE_HEADER_SIZE) >> 1
    // Only a root leaf may be empty; an empty page anywhere else would stall the cursor.
    if (numKeys === 0 && !(leaf && level === 0)) this.corrupt(`page ${pgno} has no nodes`)
    // Every node is bounds-checked once here, so the hot accessors below can trust offsets.
    for (let i = 0; i < numKeys; i++) {
      const o = readU16(buf, PAGE_HEADER_SIZE + 2 * i)
      if (o < upper || o + NODE_HEADER_SIZE > ps) this.corrupt(`node ${i} of page ${pgno} lies outside the page (offset ${o})`)
      const ksize = readU16(buf, o + 6)
      let end = o + NODE_HEADER_SIZE + ksize
      if (leaf) {
        const nflags = readU16(buf, o + 4)
        end += (nflags & F_BIGDATA) !== 0 ? 8 : readU32(buf, o)
      }
      if (end > ps) this.corrupt(`node ${i} of page ${pgno} runs past the end of the page`)
    }
    const page: Page = { pgno, leaf, buf, numKeys }
    if (this.pages.size >= PARSED_PAGE_CACHE) {
      const oldest = this.pages.keys().next().value
      if (oldest !== undefined) this.pages.delete(oldest)
    }
    this.pages.set(pgno, page)
    return page
  }

  /** @internal The data of leaf node `i` (overflow pages followed and checked). */
  nodeValue (page: Page, i: number): Uint8Array {
    const b = page.buf
    const o = readU16(b, PAGE_HEADER_SIZE + 2 * i)
    const dsize = readU32(b, o)
    const nflags = readU16(b, o + 4)
    const ksize = readU16(b, o + 6)
    const d = o + NODE_HEADER_SIZE + ksize
    if ((nflags & F_BIGDATA) === 0) return b.subarray(d, d + dsize)
    const ovf = readU64(b, d)
    const head = this.rawPage(ovf)
    if ((readU16(head, 10) & TYPE_BITS) !== P_OVERFLOW) this.corrupt(`page ${ovf} (data of a record in page ${page.pgno}) is not an overflow page`)
    const n = readU32(head, 12)
    const need = overflowPages(dsize, this.pageSize)
    if (n < need) this.corrupt(`overflow page ${ovf} spans ${n} pages but holds ${dsize} bytes`)
    this.checkRange(ovf + n - 1)
    return this.pf.read(ovf * this.pageSize + PAGE_HEADER_SIZE, dsize)
  }

  /** @internal Rejects the node kinds of sub-databases and duplicates. */
  checkPlainNode (page: Page, i: number): void {
    const o = readU16(page.buf, PAGE_HEADER_SIZE + 2 * i)
    const nflags = readU16(page.buf, o + 4)
    if ((nflags & (F_SUBDATA | F_DUPDATA)) !== 0) {
      const ksize = readU16(page.buf, o + 6)
      const name = Buffer.from(page.buf.subarray(o + NODE_HEADER_SIZE, o + NODE_HEADER_SIZE + ksize)).toString('latin1')
      throw new LmdbUnsupportedError(this.file, (nflags & F_SUBDATA) !== 0
        ? `named sub-databases are not supported (found sub-database "${name}")`
        : `sorted duplicates are not supported (key "${name}")`)
    }
  }

  corrupt (reason: string): never {
    throw new LmdbFormatError(this.file, reason)
  }

  /** Page numbers past mm_last_pg belong to no committed transaction; past EOF means truncation. */
  private checkRange (pgno: number): void {
    if (!Number.isFinite(pgno) || pgno < 2 || pgno > this.meta.lastPage) {
      this.corrupt(`page number ${pgno} out of range 2..${this.meta.lastPage}`)
    }
    const end = (pgno + 1) * this.pageSize
    if (end > this.pf.size) this.corrupt(`truncated: page ${pgno} ends at byte ${end} but the file has ${this.pf.size} bytes`)
  }

  private rawPage (pgno: number): Uint8Array {
    this.checkRange(pgno)
    const buf = this.pf.read(pgno * this.pageSize, this.pageSize)
    // Every LMDB page records its own number: a cheap, strong test that a pointer is sane.
    if (readU32(buf, 0) !== pgno || readU32(buf, 4) !== 0) this.corrupt(`page ${pgno} records page number ${readU64(buf, 0)}`)
    return buf
  }
}

/** Reads both meta pages and returns the valid one with the highest transaction id. */
function pickMeta (file: string, fd: number, size: number): Meta {
  const head = new Uint8Array(PAGE_HEADER_SIZE + META_SIZE)
  const readAt = (offset: number): Uint8Array => {
    if (offset + head.length > size) return new Uint8Array(0)
    const b = new Uint8Array(head.length)
    readSync(fd, b, 0, b.length, offset)
    return b
  }
  const m0 = parseMeta(readAt(0), 0)
  const pageSize = 'pageSize' in m0 ? m0.pageSize : DEFAULT_PAGE_SIZE
  const m1 = parseMeta(readAt(pageSize), 1)
  const valid = [m0, m1].filter((m): m is Meta => 'pageSize' in m && m.pageSize === pageSize)
  if (valid.length === 0) {
    const bad = 'problem' in m0 ? m0 : m1
    if (!('problem' in bad)) throw new LmdbFormatError(file, 'no valid meta page')
    if (bad.unsupported === true) throw new LmdbUnsupportedError(file, bad.problem)
    throw new LmdbFormatError(file, bad.problem)
  }
  // liblmdb alternates commits between the two meta pages; the higher txnid is the newest.
  let best = valid[0] as Meta
  for (const m of valid) if (m.txnId > best.txnId) best = m
  return best
}

/**
 * A position in the main DB. `first`, `next` and `seek` return false when there is no record
 * there (empty DB, past the last key); `key` and `value` are then invalid. Views returned by
 * `key`/`value` share the reader's cache and must not be modified.
 */
export class LmdbCursor {
  private readonly r: LmdbReader
  private readonly stack: Page[] = []
  private readonly index: number[] = []
  private valid = false

  constructor (reader: LmdbReader) {
    this.r = reader
  }

  first (): boolean {
    const root = this.r.meta.mainDb.root
    this.stack.length = 0
    this.index.length = 0
    this.valid = false
    if (root === NO_PAGE) return false
    this.descendLeftmost(root, 0)
    return this.settle()
  }

  next (): boolean {
    // Past the end stays past the end: callers wrap explicitly with first(), as Caffe does.
    if (!this.valid) return false
    const top = this.stack.length - 1
    const leaf = this.stack[top] as Page
    const i = (this.index[top] as number) + 1
    if (i < leaf.numKeys) {
      this.index[top] = i
      this.r.checkPlainNode(leaf, i)
      return true
    }
    // Climb to the nearest ancestor with a right sibling subtree, then take its leftmost leaf.
    let level = top - 1
    while (level >= 0 && (this.index[level] as number) + 1 >= (this.stack[level] as Page).numKeys) level--
    if (level < 0) {
      this.valid = false
      return false
    }
    this.index[level] = (this.index[level] as number) + 1
    this.stack.length = level + 1
    this.index.length = level + 1
    this.descendLeftmost(childOf(this.stack[level] as Page, this.index[level] as number), level + 1)
    return this.settle()
  }

  /** Positions at the first key >= `key`. */
  seek (key: Uint8Array): boolean {
    const root = this.r.meta.mainDb.root
    this.stack.length = 0
    this.index.length = 0
    this.valid = false
    if (root === NO_PAGE) return false
    let pgno = root
    for (let level = 0; level < MAX_DEPTH; level++) {
      const p = this.r.page(pgno, level)
      this.stack.push(p)
      if (p.leaf) {
        const i = lowerBound(p, key)
        this.index.push(i)
        if (i < p.numKeys) return this.settle()
        // Every key here is smaller: the answer is the first key of the next leaf, if any.
        this.index[level] = p.numKeys - 1
        this.valid = p.numKeys > 0
        return this.next()
      }
      // Branch node 0 has an implicit "minus infinity" key, so search from node 1.
      let lo = 1
      let hi = p.numKeys - 1
      let child = 0
      while (lo <= hi) {
        const mid = (lo + hi) >> 1
        if (Buffer.compare(nodeKey(p, mid), key) <= 0) {
          child = mid
          lo = mid + 1
        } else {
          hi = mid - 1
        }
      }
      this.index.push(child)
      pgno = childOf(p, child)
    }
    return this.r.corrupt('tree deeper than 32 levels')
  }

  get key (): Uint8Array {
    const top = this.stack.length - 1
    if (!this.valid) throw new Error('LMDB cursor is not positioned on a record')
    return nodeKey(this.stack[top] as Page, this.index[top] as number)
  }

  get value (): Uint8Array {
    const top = this.stack.length - 1
    if (!this.valid) throw new Error('LMDB cursor is not positioned on a record')
    return this.r.nodeValue(this.stack[top] as Page, this.index[top] as number)
  }

  private descendLeftmost (pgno: number, level: number): void {
    let p = pgno
    for (let l = level; l < MAX_DEPTH; l++) {
      const page = this.r.page(p, l)
      this.stack.push(page)
      this.index.push(0)
      if (page.leaf) return
      p = childOf(page, 0)
    }
    this.r.corrupt('tree deeper than 32 levels')
  }

  private settle (): boolean {
    const top = this.stack.length - 1
    const leaf = this.stack[top] as Page
    this.valid = (this.index[top] as number) < leaf.numKeys
    if (this.valid) this.r.checkPlainNode(leaf, this.index[top] as number)
    return this.valid
  }
}

function nodeKey (p: Page, i: number): Uint8Array {
  const o = readU16(p.buf, PAGE_HEADER_SIZE + 2 * i)
  const ksize = readU16(p.buf, o + 6)
  return p.buf.subarray(o + NODE_HEADER_SIZE, o + NODE_HEADER_SIZE + ksize)
}

function childOf (p: Page, i: number): number {
  const b = p.buf
  const o = readU16(b, PAGE_HEADER_SIZE + 2 * i)
  return readU16(b, o) + readU16(b, o + 2) * 0x10000 + readU16(b, o + 4) * 0x100000000
}

/** First leaf index whose key is >= `key` (numKeys when none). */
function lowerBound (p: Page, key: Uint8Array): number {
  let lo = 0
  let hi = p.numKeys
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (Buffer.compare(nodeKey(p, mid), key) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}
