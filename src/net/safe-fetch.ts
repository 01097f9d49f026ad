import { lookup as dnsLookup } from 'node:dns'
import { Transform, pipeline } from 'node:stream'
import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { PermanentJobError } from '../lib/errors.js'
import { isPrivateAddress, publicOnlyLookup } from './address-policy.js'

export interface SafeFetchOptions {
  allowPrivate: boolean
  /** Largest body accepted; a bigger Content-Length or stream fails with a clear error. */
  maxBytes: number
  timeoutMs?: number
  signal?: AbortSignal
}

export interface FetchedBody {
  body: Readable
  contentType: string | undefined
  contentLength: number | undefined
  finalUrl: string
}

/** A URL could not be fetched; the message is written for the user who gave the URL. */
export class FetchError extends PermanentJobError {
  readonly retryable: boolean
  constructor (message: string, retryable = false) {
    super(message)
    this.name = 'FetchError'
    this.retryable = retryable
  }
}

/**
 * Fetches user-supplied URLs without letting them reach internal services: every address a
 * host name resolves to is checked at connect time (so DNS rebinding cannot slip past a
 * pre-check), IP literals and every redirect hop are checked too, only http(s) is followed,
 * and the body is size-limited while it streams.
 */
export class SafeFetcher {
  private readonly agents = new Map<boolean, Agent>()

  async open (url: string, options: SafeFetchOptions): Promise<FetchedBody> {
    let current = url
    for (let hop = 0; hop <= 5; hop++) {
      const target = parseTarget(current)
      if (!options.allowPrivate && isPrivateAddress(target.hostname)) {
        throw new FetchError(`refusing to fetch ${redact(current)}: ${target.hostname} is a private, loopback or link-local address (the server must be started with --allow-private-urls to allow this)`)
      }
      let res
      try {
        res = await request(current, {
          dispatcher: this.agent(options.allowPrivate),
          method: 'GET',
          headersTimeout: options.timeoutMs ?? 30_000,
          bodyTimeout: options.timeoutMs ?? 30_000,
          ...(options.signal === undefined ? {} : { signal: options.signal })
        })
      } catch (err) {
        throw describeNetworkError(err, current)
      }
      if ([301, 302, 303, 307, 308].includes(res.statusCode)) {
        discard(res.body)
        const location = res.headers.location
        if (typeof location !== 'string') throw new FetchError(`${redact(current)} redirected without a Location header`)
        current = new URL(location, current).toString()
        continue
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        discard(res.body)
        throw new FetchError(`fetching ${redact(current)} failed: the server answered HTTP ${res.statusCode}`, res.statusCode >= 500 || res.statusCode === 429)
      }
      const lengthHeader = res.headers['content-length']
      const contentLength = typeof lengthHeader === 'string' ? Number(lengthHeader) : undefined
      if (contentLength !== undefined && contentLength > options.maxBytes) {
        discard(res.body)
        throw new FetchError(`${redact(current)} is ${formatBytes(contentLength)}, more than the limit of ${formatBytes(options.maxBytes)}`)
      }
      const type = res.headers['content-type']
      return { body: limitStream(res.body, options.maxBytes, current), contentType: typeof type === 'string' ? type : undefined, contentLength, finalUrl: current }
    }
    throw new FetchError(`${redact(url)} redirected more than 5 times`)
  }

  /** Fetches a small text resource (a prototxt) completely. */
  async text (url: string, options: SafeFetchOptions): Promise<string> {
    const res = await this.open(url, options)
    const chunks: Buffer[] = []
    for await (const chunk of res.body) chunks.push(Buffer.from(chunk as Uint8Array))
    return Buffer.concat(chunks).toString('utf8')
  }

  async close (): Promise<void> {
    await Promise.all([...this.agents.values()].map(async (a) => { await a.close() }))
    this.agents.clear()
  }

  private agent (allowPrivate: boolean): Agent {
    let agent = this.agents.get(allowPrivate)
    if (agent === undefined) {
      agent = new Agent({ connect: { lookup: allowPrivate ? dnsLookup : checkedLookup } })
      this.agents.set(allowPrivate, agent)
    }
    return agent
  }
}

const checkedLookup = publicOnlyLookup('the server must be started with --allow-private-urls to allow this')

function parseTarget (raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new FetchError(`not a valid URL: ${JSON.stringify(raw.slice(0, 200))}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchError(`only http:// and https:// URLs can be fetched, not ${url.protocol}`)
  if (url.hostname === '') throw new FetchError('URL has no host')
  return url
}

// undici's body emits an AbortError when destroyed before its end; with no listener that
// error is uncaught and takes the whole process down.
function discard (body: Readable): void {
  body.on('error', () => {})
  body.destroy()
}

// Counts bytes as the consumer pulls them. A 'data' listener would do it in fewer lines, but it
// switches the body into flowing mode at once and drops whatever arrives before the consumer
// (a blob store still opening its temp file) starts reading.
function limitStream (body: Readable, maxBytes: number, url: string): Readable {
  let seen = 0
  const limited = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      seen += chunk.length
      if (seen > maxBytes) done(new FetchError(`${redact(url)} is larger than the limit of ${formatBytes(maxBytes)}`))
      else done(null, chunk)
    }
  })
  pipeline(body, limited, () => {})
  return limited
}

function describeNetworkError (err: unknown, url: string): FetchError {
  const found = findCause(err)
  if (found.code === 'ET_PRIVATE_ADDRESS') return new FetchError(`refusing to fetch ${redact(url)}: ${found.message}`)
  if (found.code === 'ENOTFOUND' || found.code === 'EAI_AGAIN') return new FetchError(`cannot fetch ${redact(url)}: host not found`, found.code === 'EAI_AGAIN')
  if (found.code === 'ECONNREFUSED') return new FetchError(`cannot fetch ${redact(url)}: connection refused`, true)
  if (found.name === 'AbortError') return new FetchError(`fetching ${redact(url)} was aborted`, true)
  if (/timeout/i.test(found.code ?? '') || /timeout/i.test(found.message)) return new FetchError(`fetching ${redact(url)} timed out`, true)
  return new FetchError(`cannot fetch ${redact(url)}: ${found.message}`, true)
}

function findCause (err: unknown): { code: string | undefined, message: string, name: string } {
  let current: unknown = err
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code: unknown = Reflect.get(current, 'code')
    if (typeof code === 'string' && code !== 'UND_ERR_CONNECT' && code !== 'UND_ERR') return { code, message: current.message, name: current.name }
    if (current.cause === undefined) break
    current = current.cause
  }
  return current instanceof Error ? { code: undefined, message: current.message, name: current.name } : { code: undefined, message: String(current), name: 'Error' }
}

/** The URL without credentials, for messages. */
function redact (raw: string): string {
  try {
    const url = new URL(raw)
    url.username = ''
    url.password = ''
    return url.toString()
  } catch {
    return raw.slice(0, 200)
  }
}

export function formatBytes (n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n} bytes`
}
