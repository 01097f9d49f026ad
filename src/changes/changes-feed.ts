import { setTimeout as sleep } from 'node:timers/promises'
import { Change } from '../db/change.js'
import type { CouchDatabase } from '../db/couch.js'
import type { Logger } from '../lib/logger.js'

export { Change }

export interface ChangesFeedOptions {
  /** Where to start: an opaque sequence from a previous run, or 'now'. */
  since: unknown
  includeDocs: boolean
  /**
   * Server heartbeat interval; silence for 3× this means the connection is dead. Short,
   * because PouchDB's server sends the response headers (which mark the feed live) only with
   * the first heartbeat or change.
   */
  heartbeatMs?: number
  /** Called for every change in order; must not block (hand work off, don't await it here). */
  onChange: (change: Change) => void
  /** The feed connected (true) or was lost (false). */
  onLive?: (live: boolean) => void
  logger: Logger
}

/**
 * Follows a database's `_changes` as a continuous feed with heartbeats. Reconnects with
 * backoff (0.25 s doubling to 10 s) from the last sequence seen, so a database restart loses
 * nothing and replays nothing already delivered in this run. nano's changesReader polls and
 * pauses in 100 ms steps and backs off from 5 s, too slow for job dispatch; this feed reacts
 * within a round trip.
 */
export class ChangesFeed {
  private readonly couch: CouchDatabase
  private readonly options: ChangesFeedOptions
  private since: unknown
  private controller: AbortController | undefined
  private stopped = false
  private readonly stopping = new AbortController()
  private running: Promise<void> | undefined
  private live = false

  constructor (couch: CouchDatabase, options: ChangesFeedOptions) {
    this.couch = couch
    this.options = options
    this.since = options.since
  }

  /** The last sequence delivered to onChange. */
  get lastSeq (): unknown {
    return this.since
  }

  get isLive (): boolean {
    return this.live
  }

  start (): void {
    this.running ??= this.loop()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    this.controller?.abort()
    await this.running
  }

  private async loop (): Promise<void> {
    // A connection that stayed up this long proves the database is back, so the backoff starts
    // over; one that ended sooner (refused, or a server that closes every feed at once) backs off.
    const healthyMs = Math.max(1000, this.options.heartbeatMs ?? 2000)
    let delay = 0
    while (!this.stopped) {
      const opened = Date.now()
      let failure: unknown
      try {
        await this.follow()
      } catch (err) {
        if (this.stopped) break
        failure = err
      }
      delay = Date.now() - opened >= healthyMs ? 0 : delay === 0 ? 250 : Math.min(delay * 2, 10_000)
      if (failure !== undefined) this.options.logger.warn({ err: describe(failure), retryInMs: delay }, 'changes feed lost')
      this.setLive(false)
      if (!this.stopped && delay > 0) await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => {})
    }
  }

  /** One connection: resolves when the server ends the response, rejects on failure. */
  private async follow (): Promise<void> {
    const heartbeat = this.options.heartbeatMs ?? 2000
    const controller = new AbortController()
    this.controller = controller
    let watchdog: NodeJS.Timeout | undefined
    const arm = (): void => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => controller.abort(new Error(`no heartbeat from the database for ${3 * heartbeat} ms`)), 3 * heartbeat)
    }
    arm()
    let buffered = ''
    try {
      // 'now' is resolved once to a real sequence: reconnecting with 'now' again would skip
      // every change made while the connection was down.
      if (this.since === 'now') this.since = await this.couch.updateSeq()
      const stream = await this.couch.changesStream({ since: this.since, heartbeatMs: heartbeat, includeDocs: this.options.includeDocs, signal: controller.signal })
      // Live once the server answered: every change from here on will reach us.
      this.setLive(true)
      for await (const chunk of stream) {
        arm()
        buffered += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')
        let newline = buffered.indexOf('\n')
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim()
          buffered = buffered.slice(newline + 1)
          if (line !== '') this.handleLine(line)
          newline = buffered.indexOf('\n')
        }
      }
    } finally {
      clearTimeout(watchdog)
      controller.abort()
    }
  }

  private handleLine (line: string): void {
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch {
      this.options.logger.warn({ line: line.slice(0, 200) }, 'changes feed sent a line that is not JSON')
      return
    }
    const change = Change.safeParse(json)
    if (!change.success) {
      // `{"last_seq": …}` ends a continuous feed the server chose to close; keep its position.
      if (typeof json === 'object' && json !== null && 'last_seq' in json) this.since = Reflect.get(json, 'last_seq')
      return
    }
    this.since = change.data.seq
    try {
      this.options.onChange(change.data)
    } catch (err) {
      this.options.logger.error({ err, docId: change.data.id }, 'change handler failed')
    }
  }

  private setLive (live: boolean): void {
    if (this.live === live) return
    this.live = live
    this.options.onLive?.(live)
  }
}

function describe (err: unknown): string {
  if (err instanceof Error) return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message
  return String(err)
}
