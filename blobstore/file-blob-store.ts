import { randomBytes } from 'node:crypto'
import type { BigIntStats } from 'node:fs'
import { lstat, mkdir, open, readFile, readdir, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { ConflictError, NotFoundError, ValidationError } from '../src/lib/errors.js'
import { assertSafeKey, assertSafePrefix, compareBlobKeys, isSafeKey } from './blob-key.js'
import { abortReasonOr, bodyChunks, byteRange, emptyStream, withSignal } from './blob-io.js'
import type { BlobBody, BlobEntry, BlobGetOptions, BlobPutOptions, BlobStat, BlobStore } from './blob-store.js'

// Bookkeeping names start with '.', which assertSafeKey forbids in keys, so they can never
// collide with a blob and listing can skip them by their first character.
const PART = '.et-part.'
const META = '.et-meta.'

const DERIVED_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.log': 'text/plain',
  '.prototxt': 'text/plain',
  '.html': 'text/html',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.zip': 'application/zip'
}

/** Where FileBlobStore keeps blobs and whether puts wait for fsync. */
export interface FileBlobStoreOptions {
  /** Root directory; created on first put. */
  dir: string
  /** fsync each blob and its directory before the put resolves (default true). */
  durable?: boolean
}

interface Sidecar {
  contentType: string
  ino: string
  size: string
  mtimeNs: string
}

/**
 * Blobs as plain files under a root directory: `<dir>/<key>`.
 *
 * A put streams into a temp file in the key's own directory (same filesystem, so the
 * rename is atomic), fsyncs it, then renames it over the key: readers see the old file or
 * the new one, never half of one, and a failed or aborted put unlinks its temp file.
 * Temp files left by a crash are named `.et-part.*` and are never listed or read.
 *
 * Content type lives in a sidecar `.et-meta.<name>` that records the inode, size and mtime
 * of the data file it describes. A sidecar that does not match the current file (a
 * concurrent overwrite, a crash between the two renames) is ignored and the type is
 * derived from the file extension instead, so a stat can miss the given type but never
 * report another put's.
 *
 * A key cannot be both a blob and a directory of blobs (`a` and `a/b`): such a put fails
 * with ConflictError.
 */
export class FileBlobStore implements BlobStore {
  readonly #root: string
  readonly #durable: boolean

  constructor (options: string | FileBlobStoreOptions) {
    const opts = typeof options === 'string' ? { dir: options } : options
    if (opts.dir === '') throw new ValidationError('file blob store needs a directory')
    this.#root = path.resolve(opts.dir)
    this.#durable = opts.durable ?? true
  }

  get root (): string {
    return this.#root
  }

  async put (key: string, body: BlobBody, options: BlobPutOptions = {}): Promise<{ size: number }> {
    assertSafeKey(key)
    const { signal } = options
    signal?.throwIfAborted()
    const target = this.#pathOf(key)
    const dir = path.dirname(target)
    const name = path.basename(target)
    const temp = path.join(dir, `${PART}${name}.${randomBytes(8).toString('hex')}`)
    const handle = await this.#createTemp(key, dir, temp)
    let size = 0
    let identity: BigIntStats
    try {
      for await (const chunk of bodyChunks(body, signal)) {
        await writeAll(handle, chunk)
        size += chunk.byteLength
      }
      if (this.#durable) await handle.sync()
      identity = await handle.stat({ bigint: true })
      signal?.throwIfAborted()
    } catch (err) {
      await handle.close().catch(() => {})
      await unlink(temp).catch(() => {})
      throw abortReasonOr(signal, err)
    }
    await handle.close()
    try {
      await rename(temp, target)
    } catch (err) {
      await unlink(temp).catch(() => {})
      if (codeOf(err) === 'EISDIR') throw new ConflictError(`blob key ${JSON.stringify(key)} is a directory of other blobs`, { cause: err })
      throw err
    }
    if (this.#durable) await syncDirectory(dir)
    await this.#writeSidecar(dir, name, options.contentType, identity)
    return { size }
  }

  async get (key: string, options: BlobGetOptions = {}): Promise<Readable> {
    assertSafeKey(key)
    const range = byteRange(options)
    options.signal?.throwIfAborted()
    let handle: FileHandle
    try {
      handle = await open(this.#pathOf(key), 'r')
    } catch (err) {
      throw notFoundOr(err, key)
    }
    // The open handle pins the inode: a concurrent overwrite renames a new file in, and
    // this reader keeps streaming the complete old one.
    const info = await handle.stat()
    if (!info.isFile()) {
      await handle.close()
      throw missing(key)
    }
    if (range.start >= info.size) {
      await handle.close()
      return emptyStream()
    }
    const stream = handle.createReadStream(range.end === undefined ? { start: range.start } : { start: range.start, end: range.end })
    return withSignal(stream, options.signal)
  }

  async stat (key: string): Promise<BlobStat> {
    assertSafeKey(key)
    const file = this.#pathOf(key)
    let info: BigIntStats
    try {
      info = await stat(file, { bigint: true })
    } catch (err) {
      throw notFoundOr(err, key)
    }
    if (!info.isFile()) throw missing(key)
    const name = path.basename(file)
    const contentType = await this.#readSidecar(path.dirname(file), name, info) ?? DERIVED_TYPES[path.extname(name).toLowerCase()]
    return contentType === undefined ? { size: Number(info.size) } : { size: Number(info.size), contentType }
  }

  async exists (key: string): Promise<boolean> {
    assertSafeKey(key)
    try {
      return (await stat(this.#pathOf(key))).isFile()
    } catch (err) {
      if (isMissing(err)) return false
      throw err
    }
  }

  async delete (key: string): Promise<void> {
    assertSafeKey(key)
    const file = this.#pathOf(key)
    try {
      await unlink(file)
    } catch (err) {
      // EISDIR/EPERM: the key names a directory, which is not a blob, so there is nothing to delete.
      if (!isMissing(err) && codeOf(err) !== 'EISDIR' && codeOf(err) !== 'EPERM') throw err
    }
    await unlink(path.join(path.dirname(file), META + path.basename(file))).catch(ignoreMissing)
  }

  async list (prefix = ''): Promise<BlobEntry[]> {
    assertSafePrefix(prefix)
    const entries: BlobEntry[] = []
    const slash = prefix.lastIndexOf('/')
    await this.#walk(slash === -1 ? '' : prefix.slice(0, slash), prefix, entries)
    return entries.sort((a, b) => compareBlobKeys(a.key, b.key))
  }

  async deletePrefix (prefix: string): Promise<number> {
    assertSafePrefix(prefix)
    if (prefix === '') throw new ValidationError('refusing to delete with an empty prefix (the whole store)')
    const entries = await this.list(prefix)
    const dirs = new Set<string>()
    for (const { key } of entries) {
      await this.delete(key)
      for (let dir = parentKey(key); dir !== ''; dir = parentKey(dir)) {
        if (`${dir}/`.startsWith(prefix)) dirs.add(dir)
      }
    }
    // Deepest first; a directory still holding anything (a concurrent put's temp file,
    // keys outside the prefix) stays.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
      await rmdir(this.#pathOf(dir)).catch(() => {})
    }
    return entries.length
  }

  async close (): Promise<void> {}

  #pathOf (key: string): string {
    return path.join(this.#root, ...key.split('/'))
  }

  async #createTemp (key: string, dir: string, temp: string): Promise<FileHandle> {
    // A concurrent deletePrefix may remove the directory between mkdir and open: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        return await open(temp, 'wx', 0o644)
      } catch (err) {
        if (codeOf(err) === 'ENOTDIR') {
          throw new ConflictError(`blob key ${JSON.stringify(key)} lies under another blob`, { cause: err })
        }
        if (codeOf(err) !== 'ENOENT' || attempt >= 3) throw err
      }
      try {
        await mkdir(dir, { recursive: true })
      } catch (err) {
        if (codeOf(err) === 'ENOTDIR' || codeOf(err) === 'EEXIST') {
          throw new ConflictError(`blob key ${JSON.stringify(key)} lies under another blob`, { cause: err })
        }
        throw err
      }
    }
  }

  async #writeSidecar (dir: string, name: string, contentType: string | undefined, identity: BigIntStats): Promise<void> {
    const sidecar = path.join(dir, META + name)
    if (contentType === undefined) {
      await unlink(sidecar).catch(ignoreMissing)
      return
    }
    const record: Sidecar = {
      contentType,
      ino: identity.ino.toString(),
      size: identity.size.toString(),
      mtimeNs: identity.mtimeNs.toString()
    }
    const temp = path.join(dir, `${PART}${META}${name}.${randomBytes(8).toString('hex')}`)
    await writeFile(temp, JSON.stringify(record), { flag: 'wx' })
    await rename(temp, sidecar)
  }

  async #readSidecar (dir: string, name: string, info: BigIntStats): Promise<string | undefined> {
    let text: string
    try {
      text = await readFile(path.join(dir, META + name), 'utf8')
    } catch {
      return undefined
    }
    let record: unknown
    try {
      record = JSON.parse(text)
    } catch {
      return undefined
    }
    if (!isSidecar(record)) return undefined
    const matches = record.ino === info.ino.toString() && record.size === info.size.toString() && record.mtimeNs === info.mtimeNs.toString()
    return matches ? record.contentType : undefined
  }

  async #walk (dirKey: string, prefix: string, entries: BlobEntry[]): Promise<void> {
    let names: string[]
    try {
      names = await readdir(dirKey === '' ? this.#root : this.#pathOf(dirKey))
    } catch (err) {
      if (isMissing(err)) return
      throw err
    }
    for (const name of names) {
      if (name.startsWith('.')) continue
      const key = dirKey === '' ? name : `${dirKey}/${name}`
      let info
      try {
        // lstat: a symlink is not a blob, and following directory links could loop.
        info = await lstat(this.#pathOf(key))
      } catch (err) {
        if (isMissing(err)) continue
        throw err
      }
      if (info.isDirectory()) {
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#walk(key, prefix, entries)
      } else if (info.isFile() && key.startsWith(prefix) && isSafeKey(key)) {
        entries.push({ key, size: info.size })
      }
    }
  }
}

async function writeAll (handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
    offset += bytesWritten
  }
}

async function syncDirectory (dir: string): Promise<void> {
  // Makes the rename itself durable. Some filesystems refuse fsync on a directory; the
  // data file is already synced, so that is not worth failing the put for.
  let handle: FileHandle | undefined
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch {
  } finally {
    await handle?.close().catch(() => {})
  }
}

function isSidecar (value: unknown): value is Sidecar {
  if (typeof value !== 'object' || value === null) return false
  return ['contentType', 'ino', 'size', 'mtimeNs'].every((field) => typeof Reflect.get(value, field) === 'string')
}

function parentKey (key: string): string {
  const slash = key.lastIndexOf('/')
  return slash === -1 ? '' : key.slice(0, slash)
}

function codeOf (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code: unknown = Reflect.get(err, 'code')
  return typeof code === 'string' ? code : undefined
}

function isMissing (err: unknown): boolean {
  const code = codeOf(err)
  return code === 'ENOENT' || code === 'ENOTDIR'
}

function ignoreMissing (err: unknown): void {
  if (!isMissing(err)) throw err
}

function missing (key: string): NotFoundError {
  return new NotFoundError(`blob ${JSON.stringify(key)} not found`)
}

function notFoundOr (err: unknown, key: string): unknown {
  return isMissing(err) || codeOf(err) === 'EISDIR' ? missing(key) : err
}
