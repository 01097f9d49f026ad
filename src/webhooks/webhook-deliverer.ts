import type { Change } from '../changes/changes-feed.js'
import { casUpdate } from '../db/cas-update.js'
import type { CouchDatabase } from '../db/couch.js'
import type { Documents } from '../db/documents.js'
import { parseStored } from '../db/parse-stored.js'
import { ConflictError, NotFoundError } from '../lib/errors.js'
import type { Logger } from '../lib/logger.js'
import { isEnded, webhookPayload } from './webhook-payload.js'
import type { NotifiableJob } from './webhook-payload.js'
import type { WebhookSecrets } from './webhook-secrets.js'
import type { SendResult, WebhookSender } from './webhook-sender.js'
import { SIGNATURE_HEADER, signWebhook } from './webhook-signature.js'

export interface WebhookDelivererOptions {
  docs: Documents
  secrets: WebhookSecrets
  sender: WebhookSender
  /** Names this process in `notify-sender`. */
  senderId: string
  logger: Logger
  /** The sender's per-attempt timeout; a claim lasts this plus a margin. */
  timeoutMs: number
  /** Attempts before giving up (default 10). */
  maxAttempts?: number
  /** Delay after the first failed attempt, doubling each time (default 5 s), capped (default 1 h). */
  baseDelayMs?: number
  maxDelayMs?: number
  /** How often to look for deliveries due that no change announced (default 30 s). */
  sweepIntervalMs?: number
  /** Deliveries in flight at once (default 8); more wait their turn, jobs never do. */
  concurrency?: number
}

/** The knobs of webhook delivery a composition root (or a test) may set. */
export type WebhookTuning = Partial<Pick<WebhookDelivererOptions, 'timeoutMs' | 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs' | 'sweepIntervalMs' | 'concurrency'>>

/** Delay before the attempt after failed attempt `attempt` (1-based), with ±10% jitter. */
export function webhookRetryDelayMs (attempt: number, baseMs: number, maxMs: number): number {
  const exact = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), maxMs)
  return Math.round(exact * (0.9 + Math.random() * 0.2))
}

const DESIGN = 'elastic-thought-webhooks'
// Keyed by when the delivery is due: the retry time of a pending one, the claim's expiry of one
// being sent (another server may have died while sending it). ES5: it runs inside the database.
const dueMap = `function (doc) {
  if ((doc.type === 'training-job' || doc.type === 'classify-job') && doc['notify-url'] &&
      (doc['processing-state'] === 'finished_successfully' || doc['processing-state'] === 'failed' || doc['processing-state'] === 'cancelled')) {
    if (doc['notify-state'] === 'pending') emit(doc['notify-next-at'] || '', null);
    else if (doc['notify-state'] === 'sending') emit(doc['notify-lease-expires-at'] || '', null);
  }
}`

// A claim outlives the request's timeout by this much, so a slow database write of the result
// does not let a second server send again while the first is recording success.
const CLAIM_MARGIN_MS = 15_000
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Sends job webhooks from the server side, driven by the changes feed, so it works the same
 * whether a job ran in this process or in an NSQ worker. Delivery state lives in the job
 * document: a server claims a delivery (pending → sending, rev-checked, with a claim expiry)
 * before it POSTs, so with several servers only one sends; it records the outcome the same way.
 * Failed attempts are retried with exponential backoff; deliveries pending at start, or whose
 * sender died mid-claim, are found by a sweep. All of it runs beside job processing, never in
 * its way: onChange only schedules.
 */
export class WebhookDeliverer {
  private readonly options: WebhookDelivererOptions
  private readonly couch: CouchDatabase
  private readonly timers = new Map<string, { at: number, timer: NodeJS.Timeout }>()
  private readonly queue: string[] = []
  private readonly queued = new Set<string>()
  private readonly running = new Map<string, Promise<void>>()
  private readonly shutdown = new AbortController()
  private sweepTimer: NodeJS.Timeout | undefined
  private sweeping = false
  private stopped = false

  constructor (options: WebhookDelivererOptions) {
    this.options = options
    this.couch = options.docs.couch
  }

  private get maxAttempts (): number { return this.options.maxAttempts ?? 10 }

  /** Installs the sweep's view, resumes deliveries left pending, and sweeps periodically. */
  async start (): Promise<void> {
    await installDueView(this.couch)
    await this.sweep()
    this.sweepTimer = setInterval(() => { this.sweep().catch(() => {}) }, this.options.sweepIntervalMs ?? 30_000)
    this.sweepTimer.unref()
  }

  /** Stops taking work, aborts deliveries in flight (they are recorded as due again) and waits for them. */
  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.sweepTimer)
    for (const { timer } of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
    this.queue.length = 0
    this.queued.clear()
    this.shutdown.abort()
    await Promise.allSettled([...this.running.values()])
  }

  /** Told about every database change (with its document); must not block, and does not. */
  onChange (change: Change): void {
    if (this.stopped) return
    const doc = change.doc
    if (change.deleted === true || typeof doc !== 'object' || doc === null) {
      this.forget(change.id)
      return
    }
    const type: unknown = Reflect.get(doc, 'type')
    const state: unknown = Reflect.get(doc, 'processing-state')
    if ((type !== 'training-job' && type !== 'classify-job') || typeof state !== 'string' || !isEnded(state)) return
    const notify: unknown = Reflect.get(doc, 'notify-state')
    if (notify === 'pending') this.schedule(change.id, dueTime(Reflect.get(doc, 'notify-next-at')))
    else if (notify === 'sending') this.schedule(change.id, dueTime(Reflect.get(doc, 'notify-lease-expires-at')))
    else this.forget(change.id)
  }

  /** Schedules every delivery waiting in the database; run at start and every sweep interval. */
  async sweep (): Promise<number> {
    if (this.sweeping || this.stopped) return 0
    this.sweeping = true
    try {
      const res = await this.couch.view(DESIGN, 'due', { limit: 10_000 })
      for (const row of res.rows) this.schedule(row.id, dueTime(row.key))
      if (res.rows.length > 0) this.options.logger.debug({ count: res.rows.length }, 'webhook deliveries found by sweep')
      return res.rows.length
    } catch (err) {
      this.options.logger.warn({ err }, 'webhook sweep failed; will try again')
      return 0
    } finally {
      this.sweeping = false
    }
  }

  private schedule (id: string, at: number): void {
    if (this.stopped || this.queued.has(id) || this.running.has(id)) return
    const wait = at - Date.now()
    if (wait <= 0) {
      this.enqueue(id)
      return
    }
    const existing = this.timers.get(id)
    if (existing !== undefined && existing.at <= at) return
    if (existing !== undefined) clearTimeout(existing.timer)
    const timer = setTimeout(() => { this.enqueue(id) }, Math.min(wait, MAX_TIMER_MS))
    timer.unref()
    this.timers.set(id, { at, timer })
  }

  private forget (id: string): void {
    const existing = this.timers.get(id)
    if (existing === undefined) return
    clearTimeout(existing.timer)
    this.timers.delete(id)
  }

  private enqueue (id: string): void {
    this.forget(id)
    if (this.stopped || this.queued.has(id) || this.running.has(id)) return
    this.queued.add(id)
    this.queue.push(id)
    this.pump()
  }

  private pump (): void {
    while (!this.stopped && this.running.size < (this.options.concurrency ?? 8)) {
      const id = this.queue.shift()
      if (id === undefined) return
      this.queued.delete(id)
      const run = this.deliver(id)
        .catch((err: unknown) => {
          // The claim (if any) expires and the sweep tries again; nothing is lost.
          this.options.logger.warn({ err, jobId: id }, 'webhook delivery could not be recorded; will retry after its claim expires')
        })
        .finally(() => {
          this.running.delete(id)
          this.pump()
        })
      this.running.set(id, run)
    }
  }

  private async deliver (id: string): Promise<void> {
    const claim = await this.claim(id)
    if (claim.kind === 'later') {
      this.schedule(id, claim.at)
      return
    }
    if (claim.kind !== 'claimed') return
    const job = claim.job
    const attempt = job['notify-attempts']
    const result = await this.post(job)
    await this.record(job, attempt, result)
  }

  private async post (job: NotifiableJob): Promise<SendResult> {
    let secret: string
    try {
      secret = (await this.options.secrets.get(job['user-id'])).secret
    } catch (err) {
      if (err instanceof NotFoundError) return { ok: false, retryable: false, status: null, error: `the job's owner ${job['user-id']} no longer exists` }
      return { ok: false, retryable: true, status: null, error: 'the signing key could not be read (database unavailable)' }
    }
    const payload = webhookPayload(job)
    const body = JSON.stringify(payload)
    const url = job['notify-url'] ?? ''
    return await this.options.sender.send(url, body, {
      'user-agent': 'ElasticThought-Webhook/1.0',
      'x-elasticthought-event': payload.event,
      'x-elasticthought-delivery': payload['delivery-id'],
      'x-elasticthought-attempt': String(job['notify-attempts']),
      [SIGNATURE_HEADER]: signWebhook(secret, body, Math.floor(Date.now() / 1000))
    }, this.shutdown.signal)
  }

  private async claim (id: string): Promise<{ kind: 'claimed', job: NotifiableJob } | { kind: 'later', at: number } | { kind: 'none' }> {
    const box: { outcome: { kind: 'claimed' } | { kind: 'later', at: number } | { kind: 'none' } } = { outcome: { kind: 'none' } }
    let result
    try {
      result = await this.update(id, (doc) => {
        box.outcome = { kind: 'none' }
        const now = Date.now()
        if (!isEnded(doc['processing-state']) || doc['notify-url'] === null) return null
        if (doc['notify-state'] === 'pending') {
          const due = dueTime(doc['notify-next-at'])
          if (due > now) {
            box.outcome = { kind: 'later', at: due }
            return null
          }
        } else if (doc['notify-state'] === 'sending') {
          const expires = dueTime(doc['notify-lease-expires-at'])
          if (expires > now) {
            // Someone else is sending it; look again when their claim would have expired.
            box.outcome = { kind: 'later', at: expires }
            return null
          }
          if (doc['notify-attempts'] >= this.maxAttempts) {
            return { ...doc, 'notify-state': 'failed', 'notify-lease-expires-at': null, 'notify-next-at': null, 'notify-last-error': clip(`gave up after ${doc['notify-attempts']} attempts: ${doc['notify-sender'] ?? 'a server'} stopped during the last one`) }
          }
        } else {
          return null
        }
        box.outcome = { kind: 'claimed' }
        return {
          ...doc,
          'notify-state': 'sending',
          'notify-sender': this.options.senderId,
          'notify-lease-expires-at': new Date(now + this.options.timeoutMs + CLAIM_MARGIN_MS).toISOString(),
          'notify-next-at': null,
          'notify-attempts': doc['notify-attempts'] + 1
        }
      })
    } catch (err) {
      if (err instanceof NotFoundError) return { kind: 'none' }
      throw err
    }
    return box.outcome.kind === 'claimed' ? { kind: 'claimed', job: result.doc } : box.outcome
  }

  private async record (job: NotifiableJob, attempt: number, result: SendResult): Promise<void> {
    const log = this.options.logger.child({ jobId: job._id, attempt })
    const shutDown = this.shutdown.signal.aborted && !result.ok
    let lost = false
    const written = await this.update(job._id, (doc) => {
      lost = false
      if (doc['notify-state'] !== 'sending' || doc['notify-sender'] !== this.options.senderId || doc['notify-attempts'] !== attempt) {
        lost = true
        return null
      }
      // notify-sender stays: it says which server made the last attempt.
      const released = { ...doc, 'notify-lease-expires-at': null, 'notify-last-status': result.status }
      const now = Date.now()
      if (result.ok) return { ...released, 'notify-state': 'delivered', 'notify-delivered-at': new Date(now).toISOString(), 'notify-last-error': null, 'notify-next-at': null }
      // Stopping is not the receiver's fault: the attempt is given back and is due at once.
      if (shutDown) return { ...released, 'notify-state': 'pending', 'notify-attempts': Math.max(0, attempt - 1), 'notify-next-at': new Date(now).toISOString(), 'notify-last-error': clip(result.error) }
      if (result.retryable && attempt < this.maxAttempts) {
        const delay = webhookRetryDelayMs(attempt, this.options.baseDelayMs ?? 5000, this.options.maxDelayMs ?? 3_600_000)
        return { ...released, 'notify-state': 'pending', 'notify-next-at': new Date(now + delay).toISOString(), 'notify-last-error': clip(result.error) }
      }
      const error = result.retryable ? `gave up after ${attempt} attempts: ${result.error}` : result.error
      return { ...released, 'notify-state': 'failed', 'notify-next-at': null, 'notify-last-error': clip(error) }
    }).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined
      throw err
    })
    if (written === undefined) return
    if (lost) {
      log.warn('webhook claim was taken over before the outcome was recorded')
      return
    }
    const doc = written.doc
    if (doc['notify-state'] === 'delivered') log.info({ status: result.ok ? result.status : null }, 'webhook delivered')
    else if (doc['notify-state'] === 'failed') log.error({ error: doc['notify-last-error'] }, 'webhook given up')
    else {
      log.warn({ error: doc['notify-last-error'], nextAt: doc['notify-next-at'] }, 'webhook attempt failed; will retry')
      this.schedule(doc._id, dueTime(doc['notify-next-at']))
    }
  }

  private async update (id: string, change: (doc: NotifiableJob) => NotifiableJob | null): Promise<{ written: boolean, doc: NotifiableJob }> {
    return await casUpdate<NotifiableJob>(
      async () => await this.read(id),
      async (doc) => await this.options.docs.write({ ...doc, 'updated-at': new Date().toISOString() }),
      change,
      // Writers of an ended job are few (a cancel, other servers' claims): a 409 storm means trouble.
      { maxAttempts: 5 }
    ).catch((err: unknown) => {
      if (err instanceof ConflictError) this.options.logger.warn({ jobId: id }, 'webhook state kept changing under us')
      throw err
    })
  }

  private async read (id: string): Promise<NotifiableJob> {
    const raw = await this.options.docs.read(id)
    const type: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'type') : undefined
    if (type === 'training-job') return parseStored('training-job', raw)
    if (type === 'classify-job') return parseStored('classify-job', raw)
    throw new NotFoundError(`job ${id} not found`)
  }
}

function dueTime (value: unknown): number {
  if (typeof value !== 'string' || value === '') return 0
  const at = Date.parse(value)
  return Number.isNaN(at) ? 0 : at
}

function clip (message: string): string {
  return message.length <= 2000 ? message : `${message.slice(0, 1990)} [… cut]`
}

async function installDueView (couch: CouchDatabase): Promise<void> {
  const id = `_design/${DESIGN}`
  const views = { due: { map: dueMap } }
  for (let attempt = 0; attempt < 5; attempt++) {
    let rev: string | undefined
    try {
      const current = await couch.get(id)
      if (JSON.stringify(Reflect.get(current as object, 'views')) === JSON.stringify(views)) return
      const r: unknown = Reflect.get(current as object, '_rev')
      rev = typeof r === 'string' ? r : undefined
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
    try {
      await couch.put({ _id: id, language: 'javascript', views, ...(rev === undefined ? {} : { _rev: rev }) })
      return
    } catch (err) {
      // Another server installed it at the same moment: read it again.
      if (!(err instanceof ConflictError)) throw err
    }
  }
}
