/**
 * On-disk layout of LMDB data format version 1 (liblmdb 0.9.x, 64-bit little-endian builds),
 * the format Caffe's convert_imageset writes. Offsets were checked against files made by
 * Debian's mdb_load 0.9.24.
 *
 * Page: 16-byte header {pgno u64, pad u16, flags u16, lower u16, upper u16} (overflow pages
 * reuse lower/upper as a u32 page count), then u16 node offsets growing up from byte 16 and
 * nodes packed down from the end of the page. Node: {lo u16, hi u16, flags u16, ksize u16, key,
 * data}; a leaf stores its data size in lo|hi<<16, a branch its child pgno in lo|hi<<16|flags<<32.
 */

export const MAGIC = 0xBEEFC0DE
export const DATA_VERSION = 1
export const PAGE_HEADER_SIZE = 16
export const NODE_HEADER_SIZE = 8
export const META_SIZE = 136
export const DEFAULT_PAGE_SIZE = 4096
export const MIN_PAGE_SIZE = 512
export const MAX_PAGE_SIZE = 65536
/** MDB_MAXKEYSIZE of a default liblmdb 0.9 build. */
export const MAX_KEY_SIZE = 511
/** liblmdb's own cursor stack depth (CURSOR_STACK); a deeper tree is corrupt. */
export const MAX_DEPTH = 32
/** P_INVALID, the root of an empty tree (~0 as a 64-bit pgno). */
export const NO_PAGE = -1

export const P_BRANCH = 0x01
export const P_LEAF = 0x02
export const P_OVERFLOW = 0x04
export const P_META = 0x08
export const P_LEAF2 = 0x20
export const P_SUBP = 0x40

export const F_BIGDATA = 0x01
export const F_SUBDATA = 0x02
export const F_DUPDATA = 0x04

export const MDB_REVERSEKEY = 0x02
export const MDB_DUPSORT = 0x04
export const MDB_INTEGERKEY = 0x08
export const MDB_DUPFIXED = 0x10
export const MDB_INTEGERDUP = 0x20
export const MDB_REVERSEDUP = 0x40

/** Byte offsets inside a meta page (page header included). */
const M_MAGIC = 16
const M_VERSION = 20
const M_ADDRESS = 24
const M_MAPSIZE = 32
const M_FREE_DB = 40
const M_MAIN_DB = 88
const M_LAST_PG = 136
const M_TXNID = 144

/** One MDB_db record: the statistics and root of a B+tree. */
export interface DbRecord {
  /** md_pad; in the free DB's record liblmdb keeps the page size here (mm_psize). */
  pad: number
  flags: number
  depth: number
  branchPages: number
  leafPages: number
  overflowPages: number
  entries: number
  /** NO_PAGE for an empty tree. */
  root: number
}

/** One meta page: which transaction it records and where the trees are. */
export interface Meta {
  pageSize: number
  mapSize: number
  lastPage: number
  txnId: number
  freeDb: DbRecord
  mainDb: DbRecord
}

/** Reads a little-endian u64; all-ones becomes NO_PAGE, anything beyond 2^53 is rejected by callers via NaN. */
export function readU64 (b: Uint8Array, o: number): number {
  const lo = readU32(b, o)
  const hi = readU32(b, o + 4)
  if (lo === 0xFFFFFFFF && hi === 0xFFFFFFFF) return NO_PAGE
  if (hi >= 0x200000) return Number.NaN
  return hi * 0x100000000 + lo
}

export function readU32 (b: Uint8Array, o: number): number {
  return ((b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16)) + (b[o + 3] as number) * 0x1000000
}

export function readU16 (b: Uint8Array, o: number): number {
  return (b[o] as number) | ((b[o + 1] as number) << 8)
}

export function writeU16 (b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff
  b[o + 1] = (v >>> 8) & 0xff
}

export function writeU32 (b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff
  b[o + 1] = (v >>> 8) & 0xff
  b[o + 2] = (v >>> 16) & 0xff
  b[o + 3] = (v >>> 24) & 0xff
}

export function writeU64 (b: Uint8Array, o: number, v: number): void {
  if (v === NO_PAGE) {
    writeU32(b, o, 0xFFFFFFFF)
    writeU32(b, o + 4, 0xFFFFFFFF)
    return
  }
  writeU32(b, o, v % 0x100000000)
  writeU32(b, o + 4, Math.floor(v / 0x100000000))
}

/** liblmdb's me_nodemax: a leaf node (header + key + data) larger than this moves its data to overflow pages. */
export function nodeMax (pageSize: number): number {
  return ((((pageSize - PAGE_HEADER_SIZE) / 2) | 0) & ~1) - 2
}

/** OVPAGES(): pages needed for `size` bytes of overflow data behind one page header. */
export function overflowPages (size: number, pageSize: number): number {
  return Math.floor((PAGE_HEADER_SIZE - 1 + size) / pageSize) + 1
}

export function isPowerOfTwo (n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0
}

function readDb (b: Uint8Array, o: number): DbRecord {
  return {
    pad: readU32(b, o),
    flags: readU16(b, o + 4),
    depth: readU16(b, o + 6),
    branchPages: readU64(b, o + 8),
    leafPages: readU64(b, o + 16),
    overflowPages: readU64(b, o + 24),
    entries: readU64(b, o + 32),
    root: readU64(b, o + 40)
  }
}

function writeDb (b: Uint8Array, o: number, db: DbRecord): void {
  writeU32(b, o, db.pad)
  writeU16(b, o + 4, db.flags)
  writeU16(b, o + 6, db.depth)
  writeU64(b, o + 8, db.branchPages)
  writeU64(b, o + 16, db.leafPages)
  writeU64(b, o + 24, db.overflowPages)
  writeU64(b, o + 32, db.entries)
  writeU64(b, o + 40, db.root)
}

/**
 * Parses the meta page at the start of `b` (page `pgno`, 0 or 1). Returns the reason it is not a
 * valid version-1 meta page instead of throwing, so the caller can fall back to the other one.
 */
export function parseMeta (b: Uint8Array, pgno: number): Meta | { problem: string, unsupported?: boolean } {
  if (b.length < PAGE_HEADER_SIZE + META_SIZE) return { problem: `file too small for meta page ${pgno}` }
  const magic = readU32(b, M_MAGIC)
  if (magic === 0xDEC0EFBE) return { problem: 'big-endian LMDB files are not supported', unsupported: true }
  if (magic !== MAGIC) return { problem: `bad magic 0x${magic.toString(16).padStart(8, '0')} in meta page ${pgno} (expected 0xbeefc0de)` }
  const flags = readU16(b, 10)
  if ((flags & P_META) === 0) return { problem: `page ${pgno} is not a meta page (flags 0x${flags.toString(16)})` }
  const version = readU32(b, M_VERSION)
  if (version !== DATA_VERSION) {
    return {
      problem: `data format version ${version} in meta page ${pgno}; only version 1 (liblmdb 0.9.x, as used by Caffe) is supported` +
        (version === 2 ? ' — version 2 is written by LMDB 0.9.90+/lmdb-js' : ''),
      unsupported: true
    }
  }
  const freeDb = readDb(b, M_FREE_DB)
  const mainDb = readDb(b, M_MAIN_DB)
  const pageSize = freeDb.pad
  const meta: Meta = {
    pageSize,
    mapSize: readU64(b, M_MAPSIZE),
    lastPage: readU64(b, M_LAST_PG),
    txnId: readU64(b, M_TXNID),
    freeDb,
    mainDb
  }
  if (!isPowerOfTwo(pageSize) || pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE) {
    // A 32-bit build's meta has the same magic but shifted fields, which lands here too.
    return { problem: `implausible page size ${pageSize} in meta page ${pgno} (32-bit LMDB files are not supported)` }
  }
  if (readU32(b, 0) !== pgno || readU32(b, 4) !== 0) return { problem: `meta page ${pgno} records page number ${readU64(b, 0)}` }
  if (!Number.isFinite(meta.lastPage) || meta.lastPage < 1) return { problem: `bad last page number in meta page ${pgno}` }
  if (!Number.isFinite(meta.txnId)) return { problem: `bad transaction id in meta page ${pgno}` }
  const m = mainDb
  for (const [name, v] of [['entries', m.entries], ['branch pages', m.branchPages], ['leaf pages', m.leafPages], ['overflow pages', m.overflowPages]] as const) {
    if (!Number.isFinite(v) || v < 0) return { problem: `bad main-DB ${name} count in meta page ${pgno}` }
  }
  if (m.root === NO_PAGE) {
    if (m.depth !== 0 || m.entries !== 0) return { problem: `meta page ${pgno} has an empty main DB with depth ${m.depth} and ${m.entries} entries` }
  } else {
    if (!Number.isFinite(m.root) || m.root < 2 || m.root > meta.lastPage) return { problem: `main-DB root page ${m.root} out of range 2..${meta.lastPage} in meta page ${pgno}` }
    if (m.depth < 1 || m.depth > MAX_DEPTH) return { problem: `main-DB depth ${m.depth} in meta page ${pgno}` }
  }
  return meta
}

/** Writes a complete meta page (header included) for page `pgno` into `b`, which must be zeroed. */
export function writeMeta (b: Uint8Array, pgno: number, meta: Meta): void {
  writeU64(b, 0, pgno)
  writeU16(b, 10, P_META)
  writeU32(b, M_MAGIC, MAGIC)
  writeU32(b, M_VERSION, DATA_VERSION)
  writeU64(b, M_ADDRESS, 0)
  writeU64(b, M_MAPSIZE, meta.mapSize)
  writeDb(b, M_FREE_DB, { ...meta.freeDb, pad: meta.pageSize })
  writeDb(b, M_MAIN_DB, meta.mainDb)
  writeU64(b, M_LAST_PG, meta.lastPage)
  writeU64(b, M_TXNID, meta.txnId)
}

/** An empty tree record (P_INVALID root), as liblmdb initialises both DBs. */
export function emptyDb (flags = 0): DbRecord {
  return { pad: 0, flags, depth: 0, branchPages: 0, leafPages: 0, overflowPages: 0, entries: 0, root: NO_PAGE }
}
