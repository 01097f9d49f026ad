import { Readable } from 'node:stream'
import { crc32, deflateSync, gzipSync } from 'node:zlib'
import { Header, Parser, Pax } from 'tar'
import { ArchiveError } from '../../../src/jobs/archive/archive-error.js'

/** One tar member for a hand-built archive; `size` overrides the header (to fake a huge or truncated file). */
export interface TarSpec {
  path: string
  body?: Buffer | string
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO' | 'SparseFile'
  linkpath?: string
  mode?: number
  uid?: number
  gid?: number
  mtime?: Date
  size?: number
}

const MTIME = new Date('2015-06-01T00:00:00Z')

function chunk (type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}

/** A valid 8-bit grayscale PNG whose pixels depend on `seed` (so files differ). */
export function tinyPng (seed = 0, width = 4, height = 4): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8
  ihdr[9] = 0
  const raw = Buffer.alloc((width + 1) * height)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = (seed * 31 + x * 7 + y * 13) & 0xff
  }
  return pngFromRaw(ihdr, raw)
}

/** PNG from an IHDR and filtered scanlines (filter byte 0 per row). */
export function pngFromRaw (ihdr: Buffer, raw: Buffer, level = 6): Buffer {
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level })),
    chunk('IEND', Buffer.alloc(0))
  ])
}

function block (header: Header): Buffer {
  const buf = Buffer.alloc(512)
  const needPax = header.encode(buf)
  if (!needPax) return buf
  const pax = new Pax({ path: header.path ?? '', mtime: header.mtime }).encode()
  return Buffer.concat([pax, buf])
}

/** A tar stream built with tar@7's Header/Pax; `end: false` leaves out the end-of-archive blocks. */
export function tarBytes (specs: readonly TarSpec[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = []
  for (const s of specs) {
    const body = s.body === undefined ? Buffer.alloc(0) : Buffer.from(s.body)
    const type = s.type ?? (s.path.endsWith('/') ? 'Directory' : 'File')
    const header = new Header({
      path: s.path,
      type,
      mode: s.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      uid: s.uid ?? 1000,
      gid: s.gid ?? 1000,
      uname: 'user',
      gname: 'user',
      size: s.size ?? body.length,
      mtime: s.mtime ?? MTIME,
      linkpath: s.linkpath ?? ''
    })
    parts.push(block(header), body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

/** Image files for `{ label: [names] }`, each a distinct tiny PNG, in the given order. */
export function imageSpecs (tree: Record<string, readonly string[]>, prefix = ''): TarSpec[] {
  const out: TarSpec[] = []
  let seed = 0
  for (const [label, names] of Object.entries(tree)) {
    for (const name of names) out.push({ path: `${prefix}${label}/${name}`, body: tinyPng(seed++) })
  }
  return out
}

export function targz (specs: readonly TarSpec[], options: { end?: boolean } = {}): Buffer {
  return gzipSync(tarBytes(specs, options))
}

/** A Readable that yields `buf` in chunks of `size` bytes (small chunks exercise boundaries). */
export function streamOf (buf: Buffer, size = 65536): Readable {
  const chunks: Buffer[] = []
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size))
  return Readable.from(chunks, { objectMode: false })
}

export async function collect (stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

/** A tar member as an independent reader (tar@7's Parser) sees it. */
export interface ListedEntry {
  path: string
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  body: Buffer
}

/** Lists a .tar or .tar.gz with tar@7's own Parser, not with the code under test. */
export async function listTar (buf: Buffer): Promise<ListedEntry[]> {
  const out: ListedEntry[] = []
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      const parts: Buffer[] = []
      entry.on('data', (c: Buffer) => parts.push(c))
      entry.on('end', () => {
        out.push({ path: entry.path, type: entry.type, mode: entry.mode ?? -1, uid: entry.uid ?? -1, gid: entry.gid ?? -1, size: entry.size ?? -1, body: Buffer.concat(parts) })
      })
    }
  })
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve)
    parser.on('error', reject)
    parser.end(buf)
  })
  return out
}

/** Reads all of a stream while counting what was pulled: shows whether a reader stopped early. */
export function countingStream (buf: Buffer, size = 65536): { stream: Readable, pulled: () => number } {
  let pulled = 0
  async function * gen (): AsyncGenerator<Buffer> {
    for (let i = 0; i < buf.length; i += size) {
      const c = buf.subarray(i, i + size)
      pulled += c.length
      yield c
    }
  }
  return { stream: Readable.from(gen()), pulled: () => pulled }
}

/** Awaits a rejection and returns it as an ArchiveError, failing the test if it is anything else. */
export async function archiveErrorOf (promise: Promise<unknown>): Promise<ArchiveError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof ArchiveError) return err
    throw new Error(`expected an ArchiveError, got ${String(err)}`, { cause: err })
  }
  throw new Error('expected an ArchiveError, but the promise resolved')
}
