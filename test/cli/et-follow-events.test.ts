import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { createChain } from '../helpers/resources.js'
import { startCountingProxy } from './counting-proxy.js'
import type { CountingProxy } from './counting-proxy.js'
import { startEt } from './run-et.js'
import type { EtProcess } from './run-et.js'
import { waitFor } from '../schedulers/wait-for.js'

const USER = 'follower'
const PASSWORD = 'a long follower password'
// Polling reads the job every 500 ms: twice a second.
const QUIET_MS = 3000

// The shared poll loop, with this file's longer default wait.
const until = async (check: () => boolean, what: string, ms = 20_000): Promise<void> => { await waitFor(check, what, ms) }

/**
 * `et follow` against the real server through a counting proxy. Jobs do not run here, so a
 * training job stays pending until the test cancels it through the API: that cancellation is
 * the one change `et` has to notice.
 */
describe('et follow, driven by GET /events', () => {
  let t: TestApp
  let proxy: CountingProxy
  let auth: string
  let solver: string
  const running: EtProcess[] = []
  const home = mkdtempSync(join(tmpdir(), 'et-follow-'))

  beforeAll(async () => {
    t = await startTestApp()
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 })
    proxy = await startCountingProxy(url)
    auth = await signUp(t.app, USER, PASSWORD)
    solver = (await createChain(t.app, auth)).solver
  })
  afterEach(() => {
    proxy.refuseEvents = null
    proxy.offline = false
    for (const et of running.splice(0)) if (et.child.exitCode === null) et.child.kill('SIGKILL')
  })
  afterAll(async () => {
    await proxy.close()
    await t.close()
    rmSync(home, { recursive: true, force: true })
  })

  const newJob = async (): Promise<string> => {
    const res = await t.app.inject({ method: 'POST', url: '/training-jobs', headers: { authorization: auth }, payload: { 'solver-id': solver } })
    expect(res.statusCode).toBe(201)
    return res.json().id
  }
  const follow = (id: string): EtProcess => {
    const et = startEt(['follow', id], { HOME: home, XDG_CONFIG_HOME: join(home, 'xdg'), ET_URL: proxy.url, ET_USERNAME: USER, ET_PASSWORD: PASSWORD })
    running.push(et)
    et.child.stdin.end()
    return et
  }
  const cancel = async (id: string): Promise<void> => {
    const res = await t.app.inject({ method: 'POST', url: `/training-jobs/${id}/cancel`, headers: { authorization: auth } })
    expect(res.statusCode).toBe(200)
  }

  it('reads the job only when the stream is ready and reports the end from the change event itself', async () => {
    const id = await newJob()
    const reads = (): number => proxy.count('GET', `/training-jobs/${id}`)
    const et = follow(id)
    await et.waitForStderr(new RegExp(`training ${id.slice(0, 8)}: pending`))
    await until(() => t.deps.services.changeHub.stats.subscribers === 1, 'et subscribed to /events')
    await sleep(QUIET_MS)
    const before = reads()
    // Polling would have read it at least six times by now.
    expect(before).toBeGreaterThanOrEqual(1)
    expect(before).toBeLessThanOrEqual(3)

    const cancelledAt = Date.now()
    await cancel(id)
    const done = await et.done
    expect(done.code, done.stderr).toBe(1)
    expect(done.stderr).toContain(`training job ${id} cancelled`)
    // A loose bound that only a missed event (or a stream left open) would break.
    expect(Date.now() - cancelledAt).toBeLessThan(15_000)
    // The cancellation's change carried the document: no read was needed to report it.
    expect(reads()).toBe(before)
    expect(proxy.count('GET', '/events')).toBe(1)
    // The stream was closed, not left for the process exit to cut.
    await until(() => t.deps.services.changeHub.stats.subscribers === 0, 'the stream closed')
  }, 60_000)

  it('falls back to polling when /events answers 404 (an older server), retries it, and still reports the end', async () => {
    proxy.refuseEvents = 404
    const id = await newJob()
    const reads = (): number => proxy.count('GET', `/training-jobs/${id}`)
    const eventsBefore = proxy.count('GET', '/events')
    const et = follow(id)
    await et.waitForStderr(new RegExp(`training ${id.slice(0, 8)}: pending`))
    // Polled, and the stream asked for again after its first refusal.
    await until(() => reads() >= 4 && proxy.count('GET', '/events') - eventsBefore >= 2, 'polling and retrying /events')

    await cancel(id)
    const done = await et.done
    expect(done.code, done.stderr).toBe(1)
    expect(done.stderr).toContain(`training job ${id} cancelled`)
    expect(t.deps.services.changeHub.stats.subscribers).toBe(0)
  }, 60_000)

  it('reopens a stream that was cut, reads the job once it is ready again, and stops polling', async () => {
    const id = await newJob()
    const reads = (): number => proxy.count('GET', `/training-jobs/${id}`)
    const eventsBefore = proxy.count('GET', '/events')
    const et = follow(id)
    await et.waitForStderr(new RegExp(`training ${id.slice(0, 8)}: pending`))
    await until(() => proxy.openStreams === 1 && reads() >= 1, 'et following /events')
    await sleep(1000)
    const beforeCut = reads()

    proxy.cutStreams()
    await until(() => proxy.count('GET', '/events') - eventsBefore >= 2 && proxy.openStreams === 1, 'the stream reopened')
    // Its `ready` brings one more read; after that, none until something changes.
    await sleep(1500)
    const afterReconnect = reads()
    expect(afterReconnect).toBeGreaterThan(beforeCut)
    await sleep(QUIET_MS)
    expect(reads()).toBe(afterReconnect)

    await cancel(id)
    const done = await et.done
    expect(done.code, done.stderr).toBe(1)
    expect(done.stderr).toContain(`training job ${id} cancelled`)
  }, 60_000)

  it('waits out a server that is away for a while, saying so, and reports the end once it is back', async () => {
    const id = await newJob()
    const et = follow(id)
    await et.waitForStderr(new RegExp(`training ${id.slice(0, 8)}: pending`))
    await until(() => proxy.openStreams === 1, 'et following /events')
    proxy.offline = true
    proxy.cutStreams()
    await et.waitForStderr(/: cannot reach http:\/\/127\.0\.0\.1:\d+: .*; still trying \(\d+ s\)/)
    // The job ends while the server cannot be reached; only a read after the outage can tell.
    await cancel(id)
    await sleep(1000)
    expect(et.child.exitCode).toBeNull()
    proxy.offline = false
    const done = await et.done
    expect(done.code, done.stderr).toBe(1)
    expect(done.stderr).toContain(`training job ${id} cancelled`)
  }, 60_000)
})
