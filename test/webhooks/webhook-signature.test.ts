import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { webhookRetryDelayMs } from '../../src/webhooks/webhook-deliverer.js'
import { signWebhook, verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js'

describe('webhook signatures', () => {
  const secret = 'whsec_test-secret-of-enough-length'
  const body = '{"event":"training-job.finished_successfully","id":"j1"}'
  const now = new Date('2026-11-21T12:00:00Z')
  const t = Math.floor(now.getTime() / 1000)

  it('is t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>") in hex', () => {
    const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')
    expect(signWebhook(secret, body, t)).toBe(`t=${t},v1=${expected}`)
  })

  it('verifies only the exact body, secret and a fresh timestamp', () => {
    const header = signWebhook(secret, body, t)
    expect(verifyWebhookSignature(secret, header, body, { now })).toBe(true)
    expect(verifyWebhookSignature(secret, header, body + ' ', { now })).toBe(false)
    expect(verifyWebhookSignature('whsec_another-secret-entirely', header, body, { now })).toBe(false)
    expect(verifyWebhookSignature(secret, header, body, { now: new Date(now.getTime() + 301_000) })).toBe(false)
    expect(verifyWebhookSignature(secret, header, body, { now: new Date(now.getTime() - 301_000) })).toBe(false)
    expect(verifyWebhookSignature(secret, header, body, { now: new Date(now.getTime() + 299_000) })).toBe(true)
    // The timestamp is signed: moving it to "now" breaks the signature.
    expect(verifyWebhookSignature(secret, header.replace(`t=${t}`, `t=${t + 100}`), body, { now })).toBe(false)
  })

  it('accepts any of several v1 values, and rejects malformed headers without throwing', () => {
    const good = signWebhook(secret, body, t).split(',')[1] ?? ''
    expect(verifyWebhookSignature(secret, `t=${t},v1=${'0'.repeat(64)},${good}`, body, { now })).toBe(true)
    for (const header of ['', 'garbage', `t=${t}`, `v1=${'a'.repeat(64)}`, `t=soon,${good}`, `t=${t},v1=xyz`, `t=${t},v1=${'a'.repeat(63)}`]) {
      expect(verifyWebhookSignature(secret, header, body, { now }), header).toBe(false)
    }
  })

  it('backs off exponentially within ±10%, up to the cap', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const exact = Math.min(5000 * 2 ** (attempt - 1), 3_600_000)
      const delay = webhookRetryDelayMs(attempt, 5000, 3_600_000)
      expect(delay).toBeGreaterThanOrEqual(exact * 0.9 - 1)
      expect(delay).toBeLessThanOrEqual(exact * 1.1 + 1)
    }
  })
})
