import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { assertNever } from '../lib/assert-never.js'
import { revGeneration } from '../db/change.js'
import { SseParser } from '../web/sse.js'
import type { ApiClient } from './api-client.js'
import { parseAnswer } from './api-types.js'
import { ApiError, UnreachableError } from './cli-error.js'

/** How often a waiting command reads the job while it has no event stream. */
export const POLL_MS = 500
/** The first wait before reopening a stream that failed; it doubles up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 30_000
/** How long a new stream may take to send `ready` before it counts as broken. */
const READY_TIMEOUT_MS = 10_000
/** A stream silent for this many heartbeats is dead, even if the socket looks open. */
const MISSED_HEARTBEATS = 3
/** How long a server that does not answer (restarting, say) is waited for before giving up. */
const PATIENCE_MS = 120_000
/** The longest pause between reads while the server does not answer. */
const OUTAGE_POLL_MAX_MS = 5000

const ReadyData = z.object({ 'heartbeat-ms': z.number().positive().default(15_000) }).loose()
const ChangeData = z.object({ id: z.string(), deleted: z.boolean().default(false), doc: z.unknown() }).loose()

/** What the stream tells the reader: it is live, it went down, or the document changed (null doc: read it). */
type StreamNews = { kind: 'live' } | { kind: 'down' } | { kind: 'change', doc: unknown }

export interface WatchOptions {
  /** Stops watching: the stream is closed and the iteration ends. */
  signal?: AbortSignal
  /** The polling interval while no stream is open (default POLL_MS). */
  pollMs?: number
  /** How long to keep trying while the server does not answer before failing (default 2 min). */
  patienceMs?: number
  /** Told while the server does not answer (a line for the status), and null once it does again. */
  onOutage?: (message: string | null) => void
}

/**
 * Yields the view of one document (`<collection>/<id>`, e.g. `/training-jobs`) each time it
 * changes, as long as the caller keeps iterating. Changes come from `GET /events`; after each
 * `ready` the document is read once, since whatever changed while no stream was open is not in
 * the stream. While the stream is down (an older server's 404, 429 for too many streams, a
 * network error, a silent connection) the document is polled every `pollMs` and the stream is
 * retried with backoff. Views are parsed with `schema`; an older revision than one already
 * yielded is skipped. A server that does not answer, or a proxy's 502/503/504 in front of it,
 * is waited for up to `patienceMs` (a restart should not end a long training's follow); other
 * errors reading the document (404 once it is deleted, 401) end the iteration by throwing.
 * Leaving the loop or aborting `signal` closes the stream.
 */
export async function * watchJob<T extends z.ZodType> (client: ApiClient, collection: string, id: string, schema: T, options: WatchOptions = {}): AsyncGenerator<z.infer<T>, void, undefined> {
  const path = `${collection}/${encodeURIComponent(id)}`
  const pollMs = options.pollMs ?? POLL_MS
  const patienceMs = options.patienceMs ?? PATIENCE_MS
  const stop = new AbortController()
  const signal = options.signal === undefined ? stop.signal : AbortSignal.any([stop.signal, options.signal])
  const inbox = new Inbox<StreamNews>()
  const stream = keepStreamOpen(client, id, inbox, signal)
  let newest = -1
  let outageSince: number | null = null
  try {
    let live = false
    // The first read waits a moment: the stream's `ready`, normally quicker, brings one anyway.
    let nextPollAt = Date.now() + pollMs
    for (;;) {
      const news = await inbox.take(live ? null : Math.max(0, nextPollAt - Date.now()), signal)
      if (signal.aborted) return
      let view: z.infer<T> | undefined
      let read = news === null
      if (news !== null) {
        switch (news.kind) {
          case 'live':
            live = true
            read = true
            break
          case 'down':
            // Read at once: the stream may have died with a change undelivered.
            live = false
            read = true
            break
          case 'change': {
            const parsed = schema.safeParse(news.doc)
            // No document (deleted, or not renderable) or one this client cannot read: ask
            // the API, whose answer is what the command reports or fails on.
            if (news.doc !== null && parsed.success) view = parsed.data
            else read = true
            break
          }
          default:
            assertNever(news)
        }
      }
      if (read) {
        let answer: unknown
        try {
          answer = await client.get(path, { signal })
        } catch (err) {
          if (signal.aborted) return
          if (!isOutage(err)) throw err
          outageSince ??= Date.now()
          const waited = Date.now() - outageSince
          if (waited >= patienceMs) throw err
          options.onOutage?.(`${err.message}; still trying (${Math.round(waited / 1000)} s)`)
          // Keep reading on a timer, less often the longer it lasts: the stream is down too.
          live = false
          nextPollAt = Date.now() + Math.min(OUTAGE_POLL_MAX_MS, Math.max(pollMs, waited / 4))
          continue
        }
        if (outageSince !== null) {
          outageSince = null
          options.onOutage?.(null)
        }
        view = parseAnswer(schema, answer, `GET ${path}`)
        nextPollAt = Date.now() + pollMs
      }
      // A read and a change event can pass each other: never step back to an older revision.
      const generation = revisionOf(view)
      if (view === undefined || (generation >= 0 && generation <= newest)) continue
      newest = Math.max(newest, generation)
      yield view
    }
  } finally {
    stop.abort()
    await stream
  }
}

/** Opens /events again and again until `signal` aborts, waiting longer after each failure. */
async function keepStreamOpen (client: ApiClient, id: string, inbox: Inbox<StreamNews>, signal: AbortSignal): Promise<void> {
  let retryMs = RETRY_FIRST_MS
  while (!signal.aborted) {
    const wasLive = await readStream(client, id, inbox, signal)
    if (signal.aborted) return
    inbox.push({ kind: 'down' })
    if (wasLive) retryMs = RETRY_FIRST_MS
    await sleep(retryMs, undefined, { signal }).catch(() => {})
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)
  }
}

/**
 * One connection to /events, passing on `ready` and the changes of document `id`. Resolves
 * when it ends, for whatever reason, to whether it got as far as `ready`. Failures are not
 * reported: polling covers for them, and a real problem (401) shows when the job is read.
 */
async function readStream (client: ApiClient, id: string, inbox: Inbox<StreamNews>, signal: AbortSignal): Promise<boolean> {
  const attempt = new AbortController()
  const onAbort = (): void => { attempt.abort() }
  signal.addEventListener('abort', onAbort, { once: true })
  let limitMs = READY_TIMEOUT_MS
  let watchdog = setTimeout(onAbort, limitMs)
  const rearm = (): void => {
    clearTimeout(watchdog)
    watchdog = setTimeout(onAbort, limitMs)
  }
  let live = false
  try {
    const stream = await client.open('/events', { accept: 'text/event-stream', signal: attempt.signal })
    // A proxy's HTML page for an unknown path would otherwise wait out READY_TIMEOUT_MS.
    if (!/^text\/event-stream\b/i.test(stream.contentType ?? '')) return false
    const parser = new SseParser()
    const decoder = new TextDecoder()
    for await (const chunk of stream.body) {
      rearm()
      for (const event of parser.push(decoder.decode(chunk as Uint8Array, { stream: true }))) {
        if (event.event === 'ready') {
          limitMs = ReadyData.parse(JSON.parse(event.data))['heartbeat-ms'] * MISSED_HEARTBEATS
          rearm()
          live = true
          inbox.push({ kind: 'live' })
        } else if (event.event === 'change' && live) {
          const news = changeFor(id, event.data)
          if (news !== null) inbox.push(news)
        }
      }
    }
  } catch {
    // Refused, cut, aborted or garbled: all mean the same here, see above.
  } finally {
    clearTimeout(watchdog)
    signal.removeEventListener('abort', onAbort)
    // Also ends a body left unread by an early return.
    attempt.abort()
  }
  return live
}

/** The news a change frame holds for document `id`, if any; one that cannot be read could be about it. */
function changeFor (id: string, data: string): StreamNews | null {
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return { kind: 'change', doc: null }
  }
  const change = ChangeData.safeParse(value)
  if (!change.success) return { kind: 'change', doc: null }
  if (change.data.id !== id) return null
  return { kind: 'change', doc: change.data.deleted ? null : change.data.doc ?? null }
}

/** No answer, or a proxy saying the server behind it is away: worth waiting out. */
function isOutage (err: unknown): err is Error {
  return err instanceof UnreachableError || (err instanceof ApiError && [502, 503, 504].includes(err.status))
}

/** The generation of a view's CouchDB revision (`"7-ab…"` → 7), or -1 when it shows none. */
function revisionOf (view: unknown): number {
  return typeof view === 'object' && view !== null ? revGeneration(Reflect.get(view, '_rev')) : -1
}

/** A queue one consumer waits on, with a time limit: the meeting point of the stream and the reader. */
class Inbox<T> {
  private readonly items: T[] = []
  private wake: (() => void) | undefined

  push (item: T): void {
    this.items.push(item)
    this.wake?.()
  }

  /** The oldest item; null when `timeoutMs` (null: no limit) passes or `signal` aborts first. */
  async take (timeoutMs: number | null, signal: AbortSignal): Promise<T | null> {
    if (this.items.length === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined
        const done = (): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          this.wake = undefined
          resolve()
        }
        if (timeoutMs !== null) timer = setTimeout(done, timeoutMs)
        signal.addEventListener('abort', done, { once: true })
        this.wake = done
      })
    }
    return this.items.shift() ?? null
  }
}
