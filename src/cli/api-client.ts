import { Readable, Transform } from 'node:stream'
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { ApiError, CliError, UnreachableError } from './cli-error.js'
import type { Credentials } from './config-store.js'
import { multipartBody } from './multipart-body.js'
import type { FormPart } from './multipart-body.js'

export interface Download {
  body: Readable
  size: number | undefined
  /** The server's suggested file name (Content-Disposition), if any. */
  fileName: string | undefined
  contentType: string | undefined
}

/** Lets the caller give up on a request: aborting ends it, body included. */
export interface RequestOptions {
  signal?: AbortSignal
}

/**
 * The REST API as `et` uses it: Basic auth on every request, JSON in and out, streamed
 * uploads and downloads. Every failure becomes a CliError whose message is fit to print: the
 * server's own `{code, message}` for HTTP errors, a plain reason for network ones. The
 * password is only ever in the Authorization header, never in a URL or a message.
 */
export class ApiClient {
  readonly baseUrl: string
  readonly username: string
  private readonly authorization: string
  private readonly agent: Agent

  constructor (credentials: Credentials) {
    this.baseUrl = credentials.url
    this.username = credentials.username
    this.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
    this.agent = new Agent({ keepAliveTimeout: 10_000 })
  }

  async get (path: string, options: RequestOptions = {}): Promise<unknown> {
    return await this.json('GET', path, undefined, options)
  }

  async post (path: string, body?: unknown): Promise<unknown> {
    return await this.json('POST', path, body)
  }

  async json (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, options: RequestOptions = {}): Promise<unknown> {
    const res = await this.send(path, {
      method,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...options
    })
    return await readJson(res, path)
  }

  /** POSTs a multipart form, streaming file parts; `onSent` hears the bytes sent so far. */
  async upload (path: string, parts: FormPart[], onSent?: (bytes: number) => void): Promise<unknown> {
    const form = multipartBody(parts)
    let sent = 0
    const counted = Readable.from(form.body).pipe(new Transform({
      transform (chunk: Buffer, _encoding, done) {
        sent += chunk.length
        onSent?.(sent)
        done(null, chunk)
      }
    }))
    const res = await this.send(path, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': form.contentType, ...(form.length === undefined ? {} : { 'content-length': String(form.length) }) },
      body: counted
    })
    return await readJson(res, path)
  }

  /**
   * Opens a streamed GET (a model download, a log, an event stream); the caller consumes or
   * destroys the body, or aborts `signal`. No body timeout: a stream may be idle for long.
   */
  async open (path: string, options: RequestOptions & { accept?: string } = {}): Promise<Download> {
    const { accept, ...rest } = options
    const res = await this.send(path, { method: 'GET', headers: accept === undefined ? {} : { accept }, ...rest }, { bodyTimeout: 0 })
    if (res.statusCode < 200 || res.statusCode >= 300) await readJson(res, path)
    const length = res.headers['content-length']
    const disposition = res.headers['content-disposition']
    const type = res.headers['content-type']
    const fileName = typeof disposition === 'string' ? /filename="([^"]+)"/.exec(disposition)?.[1] : undefined
    return { body: res.body, size: typeof length === 'string' ? Number(length) : undefined, fileName, contentType: typeof type === 'string' ? type : undefined }
  }

  async close (): Promise<void> {
    await this.agent.close()
  }

  private async send (path: string, options: { method: Dispatcher.HttpMethod, headers: Record<string, string>, body?: string | Readable, signal?: AbortSignal }, timeouts: { bodyTimeout?: number } = {}): Promise<Dispatcher.ResponseData> {
    try {
      return await request(`${this.baseUrl}${path}`, {
        ...options,
        headers: { ...options.headers, authorization: this.authorization, 'user-agent': 'et (elastic-thought CLI)' },
        dispatcher: this.agent,
        headersTimeout: 120_000,
        ...timeouts
      })
    } catch (err) {
      throw new UnreachableError(`cannot reach ${this.baseUrl}: ${describeNetworkError(err)}`)
    }
  }
}

async function readJson (res: Dispatcher.ResponseData, path: string): Promise<unknown> {
  const text = await res.body.text()
  if (res.statusCode >= 200 && res.statusCode < 300) {
    if (text === '') return null
    try {
      return JSON.parse(text)
    } catch {
      throw new CliError(`the server's answer to ${path} is not JSON: ${text.slice(0, 200)}`)
    }
  }
  let code = `HTTP_${res.statusCode}`
  // A proxy's or load balancer's error page says nothing a terminal line can show.
  let message = /^\s*</.test(text)
    ? `the server answered HTTP ${res.statusCode} with an HTML page, not the API's answer (a proxy in front of it, with the API away?)`
    : text.slice(0, 500) || `HTTP ${res.statusCode}`
  try {
    const body: unknown = JSON.parse(text)
    if (typeof body === 'object' && body !== null) {
      const c: unknown = Reflect.get(body, 'code')
      const m: unknown = Reflect.get(body, 'message')
      if (typeof c === 'string') code = c
      if (typeof m === 'string') message = m
    }
  } catch {
    // Not the API's error shape: the message above stands.
  }
  if (res.statusCode === 401) message = `${message} (run \`et login\` to sign in again)`
  throw new ApiError(res.statusCode, code, message)
}

function describeNetworkError (err: unknown): string {
  let current: unknown = err
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code: unknown = Reflect.get(current, 'code')
    if (code === 'ECONNREFUSED') return 'connection refused (is the server running?)'
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found'
    if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'the server did not answer in time'
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'the connection was closed unexpectedly'
    if (current.cause === undefined) return current.message
    current = current.cause
  }
  return String(current)
}
