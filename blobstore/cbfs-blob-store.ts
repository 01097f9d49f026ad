import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { z } from 'zod'
import { NotFoundError, UnavailableError, ValidationError } from '../src/lib/errors.js'
import { assertSafeKey, assertSafePrefix, compareBlobKeys, isSafeKey } from './blob-key.js'
import { abortReasonOr, byteRange, countingStream, emptyStream, existsByStat, isWholeRange, sliceStream, withSignal } from './blob-io.js'
import { cbfsHttpBaseUrl } from './blob-store-config.js'
import type { BlobBody, BlobEntry, BlobGetOptions, BlobPutOptions, BlobStat, BlobStore } from './blob-store.js'

/**
 * How `list` finds keys on a plain-HTTP store:
 * - `cbfs`: CBFS's `GET /.cbfs/list/<dir>?includeMeta=true` JSON (`{ dirs, files }`);
 * - `webdav`: `PROPFIND` with `Depth: 1` (Apache mod_dav, nginx with the dav-ext module, rclone);
 * - `autoindex`: nginx's `autoindex on; autoindex_format json;` directory listing, which
 *   is what stock nginx (Debian `nginx-light`, no dav-ext) can offer;
 * - `auto` (default): `GET /.cbfs/ping/` answering 2xx means CBFS, else a `PROPFIND`
 *   answering 207 means WebDAV, else autoindex.
 */
export type CbfsListing = 'auto' | 'cbfs' | 'webdav' | 'autoindex'
export type CbfsListingMode = Exclude<CbfsListing, 'auto'>

/** CbfsBlobStore settings: base URL, listing protocol, optional shared undici dispatcher. */
export interface CbfsBlobStoreOptions {
  /** `cbfs://host:port/` (plain HTTP) or `http(s)://host:port/optional/prefix/`. */
  url: string
  listing?: CbfsListing
  /** A shared undici dispatcher; the store then leaves closing it to the caller. */
  dispatcher?: Dispatcher
}

const PROPFIND_BODY = '<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/></prop></propfind>'
const DELETE_CONCURRENCY = 4

const CbfsListResponse = z.object({
  dirs: z.record(z.string(), z.unknown()).nullish(),
  files: z.record(z.string(), z.object({ length: z.number().optional() }).passthrough()).nullish()
})

const AutoindexResponse = z.array(z.object({
  name: z.string(),
  type: z.string(),
  size: z.number().optional()
}))

/**
 * BlobStore over CBFS-compatible plain HTTP: `PUT`, `GET` (with `Range`), `HEAD` and
 * `DELETE` of `<base>/<key>`, each key segment percent-encoded. Works against CBFS itself
 * and against nginx's WebDAV module, which must be configured with
 * `dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 0;` and, for
 * listing, either dav-ext (`dav_ext_methods PROPFIND;`) or
 * `autoindex on; autoindex_format json; index <a name no key can have, e.g. .none>;`.
 *
 * Atomicity is the server's: CBFS stores the blob by hash and links the path only after
 * the whole body arrived; nginx writes the body to a temp file and renames it into place.
 * A put of a stream is sent with chunked encoding and never buffered here.
 *
 * Content type: CBFS returns the type given at put; nginx derives it from the extension.
 * Deleting leaves empty directories behind on WebDAV servers (removing them could race
 * with a concurrent put into them).
 */
export class CbfsBlobStore implements BlobStore {
  readonly #base: URL
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #listing: CbfsListing
  #mode: Promise<CbfsListingMode> | undefined
  #closed: Promise<void> | undefined

  constructor (options: string | CbfsBlobStoreOptions) {
    const opts = typeof options === 'string' ? { url: options } : options
    this.#base = cbfsHttpBaseUrl(opts.url)
    this.#listing = opts.listing ?? 'auto'
    this.#ownsDispatcher = opts.dispatcher === undefined
    this.#dispatcher = opts.dispatcher ?? new Agent({ connect: { timeout: 10_000 } })
  }

  async put (key: string, body: BlobBody, options: BlobPutOptions = {}): Promise<{ size: number }> {
    assertSafeKey(key)
    const { signal } = options
    signal?.throwIfAborted()
    const headers: Record<string, string> = options.contentType === undefined ? {} : { 'content-type': options.contentType }
    // Bytes go as they are, so the server gets a Content-Length; streams go chunked.
    const fixed = typeof body === 'string' ? Buffer.from(body, 'utf8') : body instanceof Uint8Array ? body : undefined
    const counted = fixed === undefined ? countingStream(body, signal) : undefined
    const url = this.#keyUrl(key)
    let response: Dispatcher.ResponseData
    try {
      response = await this.#send('PUT', url, { headers, body: fixed ?? counted?.stream, signal })
    } catch (err) {
      counted?.stream.destroy()
      throw abortReasonOr(signal, err)
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      // The server may answer (413, 507) before it has read the whole body.
      counted?.stream.destroy()
      throw await this.#failure('PUT', url, response)
    }
    await response.body.dump()
    return { size: fixed?.byteLength ?? counted?.bytes() ?? 0 }
  }

  async get (key: string, options: BlobGetOptions = {}): Promise<Readable> {
    assertSafeKey(key)
    const range = byteRange(options)
    const { signal } = options
    signal?.throwIfAborted()
    const url = this.#keyUrl(key)
    const headers: Record<string, string> = isWholeRange(range) ? {} : { range: `bytes=${range.start}-${range.end ?? ''}` }
    const response = await this.#send('GET', url, { headers, signal })
    switch (response.statusCode) {
      case 200:
        // A server that ignores Range sends everything from byte 0.
        return isWholeRange(range) ? response.body : withSignal(sliceStream(response.body, range), signal)
      case 206:
        return response.body
      case 416:
        await response.body.dump()
        return emptyStream()
      default:
        if (isMissingStatus(response.statusCode)) {
          await response.body.dump()
          throw missing(key)
        }
        throw await this.#failure('GET', url, response)
    }
  }

  async stat (key: string): Promise<BlobStat> {
    assertSafeKey(key)
    const url = this.#keyUrl(key)
    const response = await this.#send('HEAD', url, {})
    if (response.statusCode !== 200 && !isMissingStatus(response.statusCode)) throw await this.#failure('HEAD', url, response)
    await response.body.dump()
    if (isMissingStatus(response.statusCode)) throw missing(key)
    const size = Number(header(response, 'content-length'))
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`HEAD ${this.#describe(url)} gave no usable Content-Length`)
    const contentType = header(response, 'content-type')
    return contentType === undefined ? { size } : { size, contentType }
  }

  async exists (key: string): Promise<boolean> {
    return await existsByStat(async () => await this.stat(key))
  }

  async delete (key: string): Promise<void> {
    assertSafeKey(key)
    const url = this.#keyUrl(key)
    const response = await this.#send('DELETE', url, {})
    if (response.statusCode === 404 || (response.statusCode >= 200 && response.statusCode <= 299)) {
      await response.body.dump()
      return
    }
    throw await this.#failure('DELETE', url, response)
  }

  async list (prefix = ''): Promise<BlobEntry[]> {
    assertSafePrefix(prefix)
    const mode = await this.#listingMode()
    const entries: BlobEntry[] = []
    const slash = prefix.lastIndexOf('/')
    await this.#walk(mode, slash === -1 ? '' : prefix.slice(0, slash), prefix, entries)
    return entries.sort((a, b) => compareBlobKeys(a.key, b.key))
  }

  async deletePrefix (prefix: string): Promise<number> {
    assertSafePrefix(prefix)
    if (prefix === '') throw new ValidationError('refusing to delete with an empty prefix (the whole store)')
    const entries = await this.list(prefix)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const entry = entries[next++]
        if (entry !== undefined) await this.delete(entry.key)
      }
    }
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, entries.length) }, worker))
    return entries.length
  }

  async close (): Promise<void> {
    this.#closed ??= this.#ownsDispatcher ? this.#dispatcher.close() : Promise.resolve()
    return this.#closed
  }

  #keyUrl (key: string): URL {
    return new URL(this.#base.href + key.split('/').map(encodeURIComponent).join('/'))
  }

  #dirUrl (dirKey: string): URL {
    return new URL(dirKey === '' ? this.#base.href : `${this.#keyUrl(dirKey).href}/`)
  }

  #describe (url: URL): string {
    return `${url.origin}${url.pathname}`
  }

  async #send (method: string, url: URL, options: { headers?: Record<string, string>, body?: Uint8Array | Readable, signal?: AbortSignal | undefined }): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, {
        method,
        dispatcher: this.#dispatcher,
        ...(options.headers === undefined ? {} : { headers: options.headers }),
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.signal === undefined ? {} : { signal: options.signal })
      })
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason
      if (err instanceof ValidationError) throw err
      const message = err instanceof Error ? err.message : String(err)
      throw new UnavailableError(`blob store ${method} ${this.#describe(url)} failed: ${message}`, { cause: err })
    }
  }

  async #failure (method: string, url: URL, response: Dispatcher.ResponseData): Promise<Error> {
    const text = (await response.body.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200)
    const message = `blob store ${method} ${this.#describe(url)} answered ${response.statusCode}${text === '' ? '' : `: ${text}`}`
    return response.statusCode >= 500 ? new UnavailableError(message) : new Error(message)
  }

  /** The listing protocol in use (detected on first call in `auto` mode), for logs and diagnostics. */
  async listingMode (): Promise<CbfsListingMode> {
    return await this.#listingMode()
  }

  async #listingMode (): Promise<CbfsListingMode> {
    if (this.#listing !== 'auto') return this.#listing
    // Only a decisive answer is remembered; a network error is retried on the next list.
    this.#mode ??= this.#detectListing().catch((err: unknown) => {
      this.#mode = undefined
      throw err
    })
    return this.#mode
  }

  async #detectListing (): Promise<CbfsListingMode> {
    const ping = await this.#send('GET', new URL('/.cbfs/ping/', this.#base), {})
    await ping.body.dump()
    if (ping.statusCode >= 200 && ping.statusCode <= 299) return 'cbfs'
    // The base directory may not exist yet (nothing stored), so ask the server root too.
    for (const url of [this.#base, new URL('/', this.#base)]) {
      const probe = await this.#send('PROPFIND', url, { headers: { depth: '0', 'content-type': 'application/xml' }, body: Buffer.from(PROPFIND_BODY) })
      await probe.body.dump()
      if (probe.statusCode === 207) return 'webdav'
      if (probe.statusCode !== 404) break
    }
    return 'autoindex'
  }

  async #walk (mode: CbfsListingMode, dirKey: string, prefix: string, entries: BlobEntry[]): Promise<void> {
    const children = await this.#children(mode, dirKey)
    for (const child of children) {
      const key = dirKey === '' ? child.name : `${dirKey}/${child.name}`
      if (child.directory) {
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#walk(mode, key, prefix, entries)
      } else if (key.startsWith(prefix) && isSafeKey(key)) {
        entries.push({ key, size: child.size })
      }
    }
  }

  async #children (mode: CbfsListingMode, dirKey: string): Promise<Child[]> {
    switch (mode) {
      case 'cbfs': return await this.#cbfsChildren(dirKey)
      case 'webdav': return await this.#webdavChildren(dirKey)
      case 'autoindex': return await this.#autoindexChildren(dirKey)
    }
  }

  async #cbfsChildren (dirKey: string): Promise<Child[]> {
    const dir = this.#dirUrl(dirKey)
    const url = new URL(`/.cbfs/list${dir.pathname}`, this.#base)
    url.searchParams.set('includeMeta', 'true')
    const response = await this.#send('GET', url, {})
    // CBFS answers 404 for a directory with nothing in it as well as for a missing one.
    if (response.statusCode === 404) {
      await response.body.dump()
      return []
    }
    if (response.statusCode !== 200) throw await this.#failure('GET', url, response)
    const parsed = CbfsListResponse.safeParse(await response.body.json())
    if (!parsed.success) throw new Error(`CBFS listing of ${this.#describe(url)} has an unexpected shape`)
    const children: Child[] = []
    for (const name of Object.keys(parsed.data.dirs ?? {})) children.push({ name, directory: true, size: 0 })
    for (const [name, meta] of Object.entries(parsed.data.files ?? {})) children.push({ name, directory: false, size: meta.length ?? 0 })
    return children
  }

  async #webdavChildren (dirKey: string): Promise<Child[]> {
    const url = this.#dirUrl(dirKey)
    const response = await this.#send('PROPFIND', url, { headers: { depth: '1', 'content-type': 'application/xml' }, body: Buffer.from(PROPFIND_BODY) })
    if (response.statusCode === 404) {
      await response.body.dump()
      return []
    }
    if (response.statusCode !== 207) throw await this.#failure('PROPFIND', url, response)
    const self = decodedPath(url.pathname)
    const children: Child[] = []
    for (const entry of parseMultistatus(await response.body.text())) {
      const entryPath = decodedPath(new URL(entry.href, url).pathname)
      if (entryPath === self || !entryPath.startsWith(self)) continue
      const name = entryPath.slice(self.length).replace(/\/$/, '')
      if (name === '' || name.includes('/')) continue
      children.push({ name, directory: entry.collection, size: entry.length })
    }
    return children
  }

  async #autoindexChildren (dirKey: string): Promise<Child[]> {
    const url = this.#dirUrl(dirKey)
    const response = await this.#send('GET', url, { headers: { accept: 'application/json' } })
    if (response.statusCode === 404) {
      await response.body.dump()
      return []
    }
    if (response.statusCode !== 200) {
      const failure = await this.#failure('GET', url, response)
      throw new Error(`${failure.message} (listing needs CBFS, WebDAV PROPFIND, or nginx autoindex with autoindex_format json)`)
    }
    const text = await response.body.text()
    let parsed
    try {
      parsed = AutoindexResponse.safeParse(JSON.parse(text))
    } catch {
      parsed = undefined
    }
    if (parsed?.success !== true) {
      throw new Error(`directory listing of ${this.#describe(url)} is not nginx autoindex JSON (set autoindex_format json)`)
    }
    return parsed.data
      .filter((item) => item.type === 'directory' || item.type === 'file')
      .map((item) => ({ name: item.name, directory: item.type === 'directory', size: item.size ?? 0 }))
  }
}

interface Child {
  name: string
  directory: boolean
  size: number
}

interface DavEntry {
  href: string
  collection: boolean
  length: number
}

// Namespace prefixes vary by server (D:, d:, lp1:, none), so elements match by local name.
const RESPONSE = /<(?:[A-Za-z_][\w.-]*:)?response(?:\s[^>]*)?>([\s\S]*?)<\/(?:[A-Za-z_][\w.-]*:)?response\s*>/g
const HREF = /<(?:[A-Za-z_][\w.-]*:)?href(?:\s[^>]*)?>([\s\S]*?)<\/(?:[A-Za-z_][\w.-]*:)?href\s*>/
const COLLECTION = /<(?:[A-Za-z_][\w.-]*:)?collection(?:\s[^>]*)?\/?>/
const LENGTH = /<(?:[A-Za-z_][\w.-]*:)?getcontentlength(?:\s[^>]*)?>\s*(\d+)\s*</

/**
 * Reads the three things listing needs (href, collection or not, length) out of a WebDAV
 * multistatus body. Not a general XML parser: enough for the flat, machine-written
 * responses of PROPFIND Depth 1.
 */
function parseMultistatus (xml: string): DavEntry[] {
  const entries: DavEntry[] = []
  for (const match of xml.matchAll(RESPONSE)) {
    const block = match[1] ?? ''
    const href = HREF.exec(block)?.[1]
    if (href === undefined) continue
    entries.push({
      href: decodeXmlText(href.trim()),
      collection: COLLECTION.test(block),
      length: Number(LENGTH.exec(block)?.[1] ?? 0)
    })
  }
  return entries
}

function decodeXmlText (text: string): string {
  const cdata = /^<!\[CDATA\[([\s\S]*)\]\]>$/.exec(text)
  if (cdata !== null) return cdata[1] ?? ''
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    switch (entity) {
      case 'amp': return '&'
      case 'lt': return '<'
      case 'gt': return '>'
      case 'quot': return '"'
      case 'apos': return "'"
      default: return String.fromCodePoint(entity.startsWith('#x') ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10))
    }
  })
}

function decodedPath (pathname: string): string {
  return pathname.split('/').map((segment) => {
    try {
      return decodeURIComponent(segment)
    } catch {
      return segment
    }
  }).join('/')
}

function header (response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name]
  return Array.isArray(value) ? value[0] : value
}

// nginx answers a GET or HEAD of a directory without its trailing slash with a redirect;
// a directory is not a blob.
function isMissingStatus (status: number): boolean {
  return status === 404 || status === 301 || status === 302
}

function missing (key: string): NotFoundError {
  return new NotFoundError(`blob ${JSON.stringify(key)} not found`)
}
