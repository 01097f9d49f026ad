import { Agent, request } from 'undici'
import { isPrivateAddress, publicOnlyLookup } from '../net/address-policy.js'

export interface WebhookSenderOptions {
  allowPrivate: boolean
  /** Whole-request budget: connect, send, and the receiver's answer. */
  timeoutMs: number
}

/** How one POST went: delivered (2xx), or failed with whether trying again could help. */
export type SendResult =
  | { ok: true, status: number }
  | { ok: false, retryable: boolean, status: number | null, error: string }

/**
 * POSTs webhook bodies under the rule that guards datafile downloads: loopback, private and
 * link-local addresses are refused (checked for IP literals up front and for every address a
 * name resolves to at connect time) unless the server allows private URLs. Redirects are not
 * followed. 5xx, 408, 429, timeouts and connection failures are retryable; other answers are
 * final. send() never throws.
 */
export class WebhookSender {
  private readonly options: WebhookSenderOptions
  private readonly agent: Agent

  constructor (options: WebhookSenderOptions) {
    this.options = options
    this.agent = new Agent({
      connect: options.allowPrivate ? {} : { lookup: checkedLookup },
      // Receivers are many and mostly idle between deliveries; do not hold their sockets.
      keepAliveTimeout: 1000
    })
  }

  async send (url: string, body: string, headers: Record<string, string>, stop: AbortSignal): Promise<SendResult> {
    let host: string
    try {
      const parsed = new URL(url)
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { ok: false, retryable: false, status: null, error: `only http:// and https:// URLs get webhooks, not ${parsed.protocol}` }
      host = parsed.hostname
    } catch {
      return { ok: false, retryable: false, status: null, error: 'notify-url is not a valid URL' }
    }
    if (!this.options.allowPrivate && isPrivateAddress(host)) {
      return { ok: false, retryable: false, status: null, error: `${host} is a private, loopback or link-local address (the server must be started with --allow-private-urls to send webhooks there)` }
    }
    const timeout = AbortSignal.timeout(this.options.timeoutMs)
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.any([stop, timeout]),
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs
      })
      // The answer's body is not used, but it must be read for the socket to be reused.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {})
      const status = res.statusCode
      if (status >= 200 && status < 300) return { ok: true, status }
      if (status >= 300 && status < 400) return { ok: false, retryable: false, status, error: `the receiver answered HTTP ${status} (a redirect); webhooks do not follow redirects, so give the final URL` }
      const retryable = status >= 500 || status === 408 || status === 429
      return { ok: false, retryable, status, error: `the receiver answered HTTP ${status}` }
    } catch (err) {
      if (stop.aborted) return { ok: false, retryable: true, status: null, error: 'the server shut down during the delivery' }
      if (timeout.aborted || /timeout/i.test(codeOf(err))) return { ok: false, retryable: true, status: null, error: `no answer within ${this.options.timeoutMs} ms` }
      const cause = innermost(err)
      if (cause.code === 'ET_PRIVATE_ADDRESS') return { ok: false, retryable: false, status: null, error: cause.message }
      if (cause.code === 'ENOTFOUND') return { ok: false, retryable: true, status: null, error: `host ${host} not found` }
      if (cause.code === 'ECONNREFUSED') return { ok: false, retryable: true, status: null, error: `connection to ${host} refused` }
      return { ok: false, retryable: true, status: null, error: `could not deliver: ${cause.message}` }
    }
  }

  async close (): Promise<void> {
    await this.agent.close()
  }
}

const checkedLookup = publicOnlyLookup('the server must be started with --allow-private-urls to send webhooks there')

function codeOf (err: unknown): string {
  const code: unknown = typeof err === 'object' && err !== null ? Reflect.get(err, 'code') : undefined
  return typeof code === 'string' ? code : ''
}

function innermost (err: unknown): { code: string, message: string } {
  let current: unknown = err
  for (let depth = 0; depth < 5; depth++) {
    const code = codeOf(current)
    if (code !== '' && code !== 'UND_ERR_CONNECT' && code !== 'UND_ERR') return { code, message: current instanceof Error ? current.message : String(current) }
    const cause: unknown = current instanceof Error ? current.cause : undefined
    if (cause === undefined) break
    current = cause
  }
  return { code: codeOf(current), message: current instanceof Error ? current.message : String(current) }
}
