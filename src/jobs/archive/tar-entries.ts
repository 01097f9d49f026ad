import { Header, Pax } from 'tar'
import type { HeaderData } from 'tar'
import { ArchiveError } from './archive-error.js'
import { describeLeadingBytes } from './sniff.js'

/** One member of a tar stream, as stored (pax and GNU long names applied, nothing normalised). */
export interface TarEntry {
  readonly path: string
  /** tar@7's type name: 'File', 'Directory', 'SymbolicLink', 'Link', 'CharacterDevice', … */
  readonly type: string
  readonly size: number
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly uname: string
  readonly gname: string
  readonly mtime: Date | undefined
  readonly linkpath: string
  /** Up to n leading bytes of the body, without consuming them; only before body() is read. */
  peek: (n: number) => Promise<Buffer>
  /** The body chunk by chunk, as views into the decompressed stream; unread bytes are skipped. */
  body: () => AsyncGenerator<Buffer>
  /** The whole body as one buffer (a view when it sits in one chunk): for small files only. */
  read: () => Promise<Buffer>
}

export interface TarReadOptions {
  maxEntries: number
  /** For the wording of "not a tar" messages. */
  compression: 'gzip' | 'none'
}

const BLOCK = 512
// Same bound tar@7 applies: a pax record or long name bigger than this is not a real one.
const MAX_META_BYTES = 1024 * 1024
const META_TYPES = new Set(['ExtendedHeader', 'OldExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'OldGnuLongPath', 'NextFileHasLongLinkpath'])

/** A pull-based byte buffer over an async chunk stream: headers are cut out, bodies handed on as views. */
class ByteQueue {
  readonly #it: AsyncIterator<Buffer>
  #chunks: Buffer[] = []
  #length = 0
  #ended = false
  /** Bytes consumed so far: the offset of the next byte in the tar stream. */
  position = 0

  constructor (chunks: AsyncIterable<Buffer>) {
    this.#it = chunks[Symbol.asyncIterator]()
  }

  get length (): number {
    return this.#length
  }

  /** True when at least n bytes are buffered; false if the stream ended first. */
  async fill (n: number): Promise<boolean> {
    while (this.#length < n) {
      if (this.#ended) return false
      const r = await this.#it.next()
      if (r.done === true) {
        this.#ended = true
        return false
      }
      if (r.value.length > 0) {
        this.#chunks.push(r.value)
        this.#length += r.value.length
      }
    }
    return true
  }

  /** The first n buffered bytes (n ≤ length), without consuming them. */
  peek (n: number): Buffer {
    const first = this.#chunks[0]
    if (first !== undefined && first.length >= n) return first.subarray(0, n)
    const parts: Buffer[] = []
    for (let have = 0, i = 0; have < n; i++) {
      const c = this.#chunks[i] as Buffer
      parts.push(c)
      have += c.length
    }
    return Buffer.concat(parts).subarray(0, n)
  }

  /** n bytes (n ≤ length), a view when they sit in one chunk. */
  take (n: number): Buffer {
    const first = this.#chunks[0] as Buffer
    let out: Buffer
    if (first.length >= n) {
      out = first.subarray(0, n)
      this.drop(n)
    } else {
      out = Buffer.allocUnsafe(n)
      let o = 0
      while (o < n) {
        const c = this.#chunks[0] as Buffer
        const k = Math.min(c.length, n - o)
        c.copy(out, o, 0, k)
        this.drop(k)
        o += k
      }
    }
    return out
  }

  /** Up to max bytes from the first buffered chunk (length must be > 0). */
  takeSome (max: number): Buffer {
    const first = this.#chunks[0] as Buffer
    const n = Math.min(max, first.length)
    const out = first.subarray(0, n)
    this.drop(n)
    return out
  }

  /** Consumes n bytes; false if the stream ended first. */
  async skip (n: number): Promise<boolean> {
    while (n > 0) {
      if (this.#length === 0 && !(await this.fill(1))) return false
      const k = Math.min(n, (this.#chunks[0] as Buffer).length)
      this.drop(k)
      n -= k
    }
    return true
  }

  async close (): Promise<void> {
    await this.#it.return?.()
  }

  /** Consumes n buffered bytes (n ≤ length), across chunks if need be. */
  drop (n: number): void {
    this.#length -= n
    this.position += n
    while (n > 0) {
      const first = this.#chunks[0] as Buffer
      if (n >= first.length) {
        this.#chunks.shift()
        n -= first.length
      } else {
        this.#chunks[0] = first.subarray(n)
        n = 0
      }
    }
  }
}

function truncated (what: string): ArchiveError {
  return new ArchiveError('truncated', `the archive is truncated: it ends ${what} (was the download interrupted?)`)
}

function notATar (head: Buffer, compression: 'gzip' | 'none'): ArchiveError {
  return compression === 'gzip'
    ? new ArchiveError('not-a-tar', `the file is gzip-compressed, but what is inside is not a tar archive (${describeLeadingBytes(head)})`)
    : new ArchiveError('not-an-archive', `the file is not a .tar.gz archive (${describeLeadingBytes(head)})`)
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK

/**
 * Reads tar entries one at a time, pulling bytes only as the consumer asks: an entry's body
 * is streamed or, if left unread, skipped when the next entry is requested. Headers are
 * decoded by tar@7 (checksums, base-256 numbers, ustar prefixes, pax records). The stream is
 * read to its very end, past the end-of-archive blocks, so a gzip trailer is always checked.
 */
export async function * readTarEntries (chunks: AsyncIterable<Buffer>, options: TarReadOptions): AsyncGenerator<TarEntry> {
  const q = new ByteQueue(chunks)
  let ex: HeaderData | undefined
  let gex: HeaderData | undefined
  let entries = 0
  let first = true
  try {
    for (;;) {
      if (q.length < BLOCK && !(await q.fill(BLOCK))) {
        if (first) throw notATar(q.peek(q.length), options.compression)
        throw truncated(q.length === 0 ? 'without tar\'s end-of-archive marker' : 'inside a tar header')
      }
      const at = q.position
      const block = q.take(BLOCK)
      const header = new Header(block, 0, ex, gex)
      // POSIX: a pax or GNU long name replaces name *and* ustar prefix; tar@7 would prepend the
      // prefix again (its own writer fills both), so the long name is applied here, whole.
      if (ex?.path !== undefined && header.type !== 'Unsupported' && !META_TYPES.has(header.type)) header.path = ex.path
      if (ex?.linkpath !== undefined && !META_TYPES.has(header.type)) header.linkpath = ex.linkpath
      if (header.nullBlock) {
        // Two zero blocks end the archive; a lone one at the very end is tolerated as well.
        if ((q.length < BLOCK && !(await q.fill(BLOCK))) || q.peek(BLOCK).every((b) => b === 0)) break
        continue
      }
      if (!header.cksumValid) {
        if (first) throw notATar(block, options.compression)
        throw new ArchiveError('corrupt', `the archive is damaged: the tar header at byte ${at} has a bad checksum`)
      }
      first = false
      const size = header.size ?? 0
      const type = header.type
      if (META_TYPES.has(type)) {
        if (size > MAX_META_BYTES) throw new ArchiveError('corrupt', `the archive is damaged: a ${type} record of ${size} bytes at byte ${at}`)
        const padded = size + padding(size)
        if (!(await q.fill(padded))) throw truncated('inside an extended header')
        const text = q.take(padded).subarray(0, size).toString('utf8')
        if (type === 'GlobalExtendedHeader') gex = Pax.parse(text, gex, true)
        else if (type === 'ExtendedHeader' || type === 'OldExtendedHeader') ex = Pax.parse(text, ex, false)
        else {
          const value = text.replace(/\0.*$/s, '')
          ex = { ...ex, ...(type === 'NextFileHasLongLinkpath' ? { linkpath: value } : { path: value }) }
        }
        continue
      }
      ex = undefined
      if (++entries > options.maxEntries) {
        throw new ArchiveError('too-many-entries', `the archive has more than ${options.maxEntries} entries, the limit for one datafile`)
      }
      const path = header.path ?? ''
      let remaining = size
      const entry: TarEntry = {
        path,
        type,
        size,
        mode: header.mode ?? 0o644,
        uid: header.uid ?? 0,
        gid: header.gid ?? 0,
        uname: header.uname ?? '',
        gname: header.gname ?? '',
        mtime: header.mtime,
        linkpath: header.linkpath ?? '',
        peek: async (n) => {
          const want = Math.min(n, remaining)
          if (q.length < want && !(await q.fill(want))) throw truncated(`in the middle of '${path}'`)
          return q.peek(want)
        },
        read: async () => {
          if (remaining !== size) throw new Error(`the body of '${path}' has already been read`)
          if (q.length < size && !(await q.fill(size))) throw truncated(`in the middle of '${path}'`)
          remaining = 0
          return q.take(size)
        },
        body: async function * () {
          while (remaining > 0) {
            if (q.length === 0 && !(await q.fill(1))) throw truncated(`in the middle of '${path}'`)
            const c = q.takeSome(remaining)
            remaining -= c.length
            yield c
          }
        }
      }
      yield entry
      // Most entries end inside the buffered chunk: no await, no promise.
      const rest = remaining + padding(size)
      if (rest <= q.length) q.drop(rest)
      else if (!(await q.skip(rest))) throw truncated(`in the middle of '${path}'`)
      remaining = 0
    }
    // Record padding, and any trailing garbage, still counts against the limits.
    while (await q.fill(1)) await q.skip(q.length)
  } finally {
    await q.close()
  }
}
