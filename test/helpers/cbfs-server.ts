import { randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'

/**
 * A CBFS-compatible HTTP server for tests, modelled on couchbaselabs/cbfs's user-file
 * API: PUT stores a path (201), GET/HEAD serve it with the Content-Type given at PUT and
 * single byte ranges (206/416), DELETE removes it (204, 404 when missing),
 * `GET /.cbfs/ping/` answers 204 and `GET /.cbfs/list/<dir>?includeMeta=true` answers
 * `{ path, dirs, files }` (404 when the directory has nothing). Bodies go to files in a
 * temp directory, and a path is linked to its new body only once the body is complete,
 * as CBFS does, so an aborted PUT leaves nothing.
 */
export interface CbfsTestServer {
  /** `http://127.0.0.1:<port>/` */
  url: string
  /** Requests received so far (tests use it to prove that no I/O happened). */
  requests: () => number
  close: () => Promise<void>
}

interface StoredFile {
  blob: string
  length: number
  contentType: string | undefined
  modified: string
}

export async function startCbfsServer (): Promise<CbfsTestServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'et-cbfs-'))
  const files = new Map<string, StoredFile>()
  let requests = 0

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname.includes('//')) return send(res, 400, 'Too many slashes in the path name')
    const filePath = decodePath(url.pathname)
    if (filePath === undefined) return send(res, 400, 'bad path encoding')
    if (url.pathname.startsWith('/.cbfs/')) {
      if (req.method === 'GET' && url.pathname === '/.cbfs/ping/') return send(res, 204)
      if (req.method === 'GET' && url.pathname.startsWith('/.cbfs/list/')) {
        return list(res, filePath.slice('.cbfs/list/'.length), url.searchParams.get('includeMeta') === 'true')
      }
      return send(res, 400, `Can't ${req.method ?? ''} here`)
    }
    switch (req.method) {
      case 'PUT': return await put(req, res, filePath)
      case 'GET': return await get(req, res, filePath, true)
      case 'HEAD': return await get(req, res, filePath, false)
      case 'DELETE': return await remove(res, filePath)
      default: return send(res, 405)
    }
  }

  const put = async (req: IncomingMessage, res: ServerResponse, filePath: string): Promise<void> => {
    const blob = path.join(dir, randomUUID())
    try {
      await pipeline(req, createWriteStream(blob))
    } catch {
      // The client went away mid-body: the path keeps its old content, if any.
      await unlink(blob).catch(() => {})
      if (!res.destroyed) send(res, 400, 'incomplete body')
      return
    }
    const { size: length } = await stat(blob)
    const previous = files.get(filePath)
    files.set(filePath, { blob, length, contentType: req.headers['content-type'], modified: new Date().toISOString() })
    if (previous !== undefined) await unlink(previous.blob).catch(() => {})
    send(res, 201)
  }

  const get = async (req: IncomingMessage, res: ServerResponse, filePath: string, withBody: boolean): Promise<void> => {
    const file = files.get(filePath)
    if (file === undefined) return send(res, 404, 'not found')
    const headers: Record<string, string> = { 'accept-ranges': 'bytes' }
    if (file.contentType !== undefined) headers['content-type'] = file.contentType
    const range = parseRange(req.headers.range, file.length)
    if (range === 'unsatisfiable') return send(res, 416, '', { 'content-range': `bytes */${file.length}` })
    if (!withBody) {
      res.writeHead(200, { ...headers, 'content-length': String(file.length) }).end()
      return
    }
    if (range === undefined) {
      res.writeHead(200, { ...headers, 'content-length': String(file.length) })
      if (file.length === 0) {
        res.end()
        return
      }
      await pipeline(createReadStream(file.blob), res).catch(() => {})
      return
    }
    res.writeHead(206, {
      ...headers,
      'content-length': String(range.end - range.start + 1),
      'content-range': `bytes ${range.start}-${range.end}/${file.length}`
    })
    await pipeline(createReadStream(file.blob, { start: range.start, end: range.end }), res).catch(() => {})
  }

  const remove = async (res: ServerResponse, filePath: string): Promise<void> => {
    const file = files.get(filePath)
    if (file === undefined) return send(res, 404, 'not found')
    files.delete(filePath)
    await unlink(file.blob).catch(() => {})
    send(res, 204)
  }

  const list = (res: ServerResponse, dirPath: string, includeMeta: boolean): void => {
    const prefix = dirPath.replace(/\/+$/, '')
    const scope = prefix === '' ? '' : `${prefix}/`
    const dirs: Record<string, { descendants: number, size: number }> = {}
    const listed: Record<string, unknown> = {}
    for (const [name, file] of files) {
      if (!name.startsWith(scope)) continue
      const rest = name.slice(scope.length)
      const slash = rest.indexOf('/')
      if (slash === -1) {
        listed[rest] = includeMeta ? { oid: file.blob, length: file.length, modified: file.modified, headers: { 'Content-Type': [file.contentType] } } : {}
      } else {
        const child = rest.slice(0, slash)
        const stats = dirs[child] ?? { descendants: 0, size: 0 }
        stats.descendants++
        stats.size += file.length
        dirs[child] = stats
      }
    }
    if (Object.keys(dirs).length === 0 && Object.keys(listed).length === 0) return send(res, 404)
    const body = JSON.stringify({ path: `/${prefix}`, dirs, files: listed })
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) }).end(body)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, err instanceof Error ? err.message : String(err))
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await rm(dir, { recursive: true, force: true })
    }
  }
}

function send (res: ServerResponse, status: number, text = '', headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)) }).end(text)
}

function decodePath (pathname: string): string | undefined {
  try {
    return pathname.split('/').map(decodeURIComponent).join('/').replace(/^\/+/, '')
  } catch {
    return undefined
  }
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, as Go's http.ServeContent reads it. */
function parseRange (header: string | undefined, length: number): { start: number, end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match === null) return undefined
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return undefined
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || length === 0) return 'unsatisfiable'
    return { start: Math.max(length - suffix, 0), end: length - 1 }
  }
  const start = Number(first)
  if (start >= length) return 'unsatisfiable'
  const end = last === '' ? length - 1 : Math.min(Number(last), length - 1)
  if (end < start) return undefined
  return { start, end }
}
