import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ApiClient } from '../../src/cli/api-client.js'
import { TrainingJobView } from '../../src/cli/api-types.js'
import { ApiError, UnreachableError } from '../../src/cli/cli-error.js'
import { watchJob } from '../../src/cli/job-events.js'
import { waitFor } from '../schedulers/wait-for.js'

const ID = 'job1'

function view (rev: number, state: string): Record<string, unknown> {
  return { id: ID, _id: ID, _rev: `${rev}-x`, type: 'training-job', 'solver-id': 's', 'processing-state': state, 'created-at': '2024-01-01T00:00:00Z' }
}

/**
 * A stand-in for the API: `GET /training-jobs/job1` answers `job` (404 once it is null), and
 * `GET /events` either answers `eventsStatus` or opens a stream the test writes frames to.
 */
class FakeApi {
  job: Record<string, unknown> | null = view(1, 'pending')
  reads = 0
  eventRequests = 0
  eventsStatus: number | null = null
  /** Set to a status to answer reads with it (a proxy whose server is away: 503). */
  readStatus: number | null = null
  heartbeatMs = 15_000
  private readonly open = new Set<ServerResponse>()
  url = ''
  private readonly server: Server

  constructor () {
    this.server = createServer((req, res) => {
      if (req.url === '/events') {
        this.eventRequests++
        if (this.eventsStatus !== null) {
          res.writeHead(this.eventsStatus, { 'content-type': 'application/json' }).end('{"code":"ET_TOO_MANY_STREAMS","message":"too many"}')
          return
        }
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
        res.write(`event: ready\ndata: ${JSON.stringify({ 'heartbeat-ms': this.heartbeatMs })}\n\n`)
        this.open.add(res)
        res.on('close', () => { this.open.delete(res) })
        return
      }
      if (req.url === `/training-jobs/${ID}`) {
        this.reads++
        if (this.readStatus !== null) res.writeHead(this.readStatus, { 'content-type': 'text/html' }).end('<html>Service Unavailable</html>')
        else if (this.job === null) res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"ET_NOT_FOUND","message":"no such training job"}')
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.job))
        return
      }
      res.writeHead(404).end()
    })
  }

  async start (): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** Streams the client has not closed yet. */
  get openStreams (): number {
    return this.open.size
  }

  /** Sends a change frame on every open stream. */
  change (id: string, doc: Record<string, unknown> | null, deleted = false): void {
    const frame = `event: change\ndata: ${JSON.stringify({ id, type: 'training-job', state: doc?.['processing-state'] ?? null, deleted, doc })}\n\n`
    for (const res of this.open) res.write(frame)
  }

  heartbeat (): void {
    for (const res of this.open) res.write(': heartbeat\n\n')
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }
}

// The shared poll loop, with this file's longer default wait.
const until = async (check: () => boolean, what: string, ms = 10_000): Promise<void> => { await waitFor(check, what, ms) }

describe('watchJob', () => {
  let api: FakeApi
  let client: ApiClient
  // Ends whatever a test left watching, so a failed test does not leave a stream open.
  let stop: AbortController

  beforeEach(async () => {
    api = new FakeApi()
    await api.start()
    client = new ApiClient({ url: api.url, username: 'u', password: 'p' })
    stop = new AbortController()
  })
  afterEach(async () => {
    stop.abort()
    await api.close()
    await client.close()
  })

  it('reads the job once after `ready`, then takes each version from the change events, skipping stale and foreign ones', async () => {
    // pollMs only delays the first read here: the stream's `ready` asks for it sooner.
    const updates = watchJob(client, '/training-jobs', ID, TrainingJobView, { signal: stop.signal, pollMs: 5000 })
    const first = await updates.next()
    expect(first.value?.['processing-state']).toBe('pending')
    expect(api.reads).toBe(1)

    api.change('someone-else', { ...view(9, 'failed'), id: 'someone-else' })
    api.change(ID, view(2, 'processing'))
    // Older than what was already shown: a read and an event that passed each other.
    api.change(ID, view(1, 'pending'))
    api.change(ID, view(3, 'finished_successfully'))
    expect((await updates.next()).value?.['processing-state']).toBe('processing')
    expect((await updates.next()).value?.['processing-state']).toBe('finished_successfully')
    expect(api.reads).toBe(1)

    // Leaving the loop closes the stream.
    await updates.return()
    await until(() => api.openStreams === 0, 'the stream closed')
    expect(api.eventRequests).toBe(1)
  })

  it('reads the job when a change comes without a document, and fails with the API\'s 404 once it is deleted', async () => {
    const updates = watchJob(client, '/training-jobs', ID, TrainingJobView, { signal: stop.signal, pollMs: 5000 })
    await updates.next()
    api.job = view(2, 'processing')
    api.change(ID, null)
    expect((await updates.next()).value?.['processing-state']).toBe('processing')
    expect(api.reads).toBe(2)

    api.job = null
    api.change(ID, null, true)
    const failure = await updates.next().then(() => null, (err: unknown) => err)
    expect(failure).toBeInstanceOf(ApiError)
    expect(failure).toMatchObject({ status: 404 })
  })

  it('polls while /events is refused (429) and takes the stream again when it is back', async () => {
    api.eventsStatus = 429
    const seen: string[] = []
    const following = (async () => {
      for await (const job of watchJob(client, '/training-jobs', ID, TrainingJobView, { signal: stop.signal, pollMs: 50 })) seen.push(job['processing-state'])
    })()
    await until(() => api.reads >= 5, 'polling')
    api.job = view(2, 'processing')
    await until(() => seen.includes('processing'), 'the polled change seen')

    // The retry after the refusal (1 s later) finds the stream open; polling stops.
    api.eventsStatus = null
    await until(() => api.openStreams === 1, 'the stream retried', 15_000)
    await sleep(1000)
    const reads = api.reads
    await sleep(1000)
    expect(api.reads).toBe(reads)

    stop.abort()
    await following
    await until(() => api.openStreams === 0, 'the stream closed on abort')
  })

  it('keeps a stream that sends heartbeats, and gives up one silent for three heartbeats', async () => {
    api.heartbeatMs = 200
    const following = (async () => {
      for await (const job of watchJob(client, '/training-jobs', ID, TrainingJobView, { signal: stop.signal })) expect(job.id).toBe(ID)
    })()
    await until(() => api.openStreams === 1, 'the stream opened')
    for (let i = 0; i < 10; i++) {
      api.heartbeat()
      await sleep(50)
    }
    expect(api.eventRequests).toBe(1)

    // Silence: the client must notice by itself, since the socket stays open.
    await until(() => api.eventRequests >= 2 && api.openStreams === 1, 'the silent stream closed and reopened', 5000)
    stop.abort()
    await following
    await until(() => api.openStreams === 0, 'the stream closed on abort')
  })

  it('waits out a server that is away (a proxy\'s 503), saying so, and carries on when it is back', async () => {
    const outages: Array<string | null> = []
    const updates = watchJob(client, '/training-jobs', ID, TrainingJobView, { signal: stop.signal, pollMs: 50, onOutage: (m) => outages.push(m) })
    expect((await updates.next()).value?.['processing-state']).toBe('pending')
    api.readStatus = 503
    api.eventsStatus = 503
    api.job = view(2, 'processing')
    // The stream drops, as it would when the server goes away.
    for (const res of [...Reflect.get(api, 'open') as Set<ServerResponse>]) res.destroy()
    const next = updates.next()
    await until(() => outages.length >= 2, 'the outage reported')
    expect(outages[0]).toMatch(/^the server answered HTTP 503 with an HTML page, .*; still trying \(\d+ s\)$/)
    api.readStatus = null
    api.eventsStatus = null
    expect((await next).value?.['processing-state']).toBe('processing')
    expect(outages.at(-1)).toBeNull()
  })

  it('gives up on a server that does not answer once its patience runs out, with the reason', async () => {
    const updates = watchJob(client, '/training-jobs', ID, TrainingJobView, { signal: stop.signal, pollMs: 50, patienceMs: 800 })
    await updates.next()
    await api.close()
    const started = Date.now()
    api.job = view(2, 'processing')
    const failure = await updates.next().then(() => null, (err: unknown) => err)
    expect(failure).toBeInstanceOf(UnreachableError)
    expect(String((failure as Error).message)).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+: connection refused/)
    expect(Date.now() - started).toBeGreaterThanOrEqual(700)
  })
})
