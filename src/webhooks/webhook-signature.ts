import { createHmac, timingSafeEqual } from 'node:crypto'

/** The header that carries a webhook's signature. */
export const SIGNATURE_HEADER = 'x-elasticthought-signature'

/**
 * Signs a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The
 * timestamp is inside the signed text, so a captured request cannot be replayed later with a
 * fresh timestamp; receivers reject old ones (see verifyWebhookSignature).
 */
export function signWebhook (secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${hmacHex(secret, unixSeconds, body)}`
}

export interface VerifyOptions {
  /** Oldest (and furthest in the future) timestamp accepted, in seconds; default 300. */
  toleranceSeconds?: number
  now?: Date
}

/**
 * Checks a signature header against the raw body exactly as received (before any JSON
 * parsing). False for a malformed header, a timestamp outside the tolerance, or a mismatch;
 * it never throws. Several `v1=` values are accepted (any may match) so senders could sign
 * with an old and a new secret while rotating.
 */
export function verifyWebhookSignature (secret: string, header: string, body: string, options: VerifyOptions = {}): boolean {
  const parts = header.split(',').map((p) => p.trim())
  const t = parts.find((p) => p.startsWith('t='))?.slice(2)
  const signatures = parts.filter((p) => p.startsWith('v1=')).map((p) => p.slice(3))
  if (t === undefined || !/^\d{1,12}$/.test(t) || signatures.length === 0) return false
  const seconds = Number(t)
  const now = (options.now ?? new Date()).getTime() / 1000
  if (Math.abs(now - seconds) > (options.toleranceSeconds ?? 300)) return false
  const expected = Buffer.from(hmacHex(secret, seconds, body), 'hex')
  return signatures.some((sig) => {
    if (!/^[0-9a-f]{64}$/.test(sig)) return false
    return timingSafeEqual(Buffer.from(sig, 'hex'), expected)
  })
}

function hmacHex (secret: string, unixSeconds: number, body: string): string {
  return createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')
}
