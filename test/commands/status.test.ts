import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { runStatus } from '../../src/commands/status.js'
import type { StatusReport } from '../../src/commands/status-report.js'
import { openTestDb } from '../jobs/life-cycle-fixtures.js'
import type { TestDb } from '../jobs/life-cycle-fixtures.js'
import { spawnTs } from '../helpers/processes.js'
import { writeJob } from '../metrics/job-fixtures.js'

const GPU_WORKER = 'worker@gpu-node-1.internal:4242:abcdef'
const CPU_WORKER = 'worker@cpu-node-7.internal:77:123456'
const DEAD_WORKER = 'worker@gone:1:000000'

function capture (signal?: AbortSignal): { io: Parameters<typeof runStatus>[2], out: () => string, err: () => string } {
  let out = ''
  let err = ''
  return {
    io: { out: (s) => { out += s }, err: (s) => { err += s }, ...(signal === undefined ? {} : { signal }) },
    out: () => out,
    err: () => err
  }
}

/** The cells of the one table row that starts with `first` (columns are separated by 2+ spaces). */
function row (text: string, first: string | RegExp): string[] {
  const lines = text.split('\n').filter((l) => typeof first === 'string' ? l.startsWith(first + ' ') : first.test(l))
  if (lines.length !== 1) throw new Error(`${lines.length} rows starting with ${String(first)} in:\n${text}`)
  return (lines[0] ?? '').trim().split(/\s{2,}/)
}

describe('elastic-thought status', () => {
  let db: TestDb
  let training: string
  let url: string

  beforeAll(async () => {
    db = await openTestDb()
    url = `${inject('couchUrl')}/${db.couch.name}`
    const now = Date.now()
    training = await writeJob(db.couch, 'training-job', 'processing', {
      'user-id': 'user:alice',
      'worker-id': GPU_WORKER,
      attempts: 2,
      'started-at': new Date(now - 120_000).toISOString(),
      'lease-expires-at': new Date(now + 45_000).toISOString(),
      progress: { iteration: 1200, 'max-iter': 10_000, loss: 0.23456, lr: 0.00912, 'test-outputs': { accuracy: 0.98134, loss: 0.061 }, series: [] }
    })
    await writeJob(db.couch, 'datafile', 'processing', { 'user-id': 'user:bob', 'worker-id': CPU_WORKER, 'lease-expires-at': new Date(now + 20_000).toISOString() })
    await writeJob(db.couch, 'datafile', 'processing', { 'user-id': 'user:bob', 'worker-id': CPU_WORKER, 'lease-expires-at': new Date(now + 50_000).toISOString() })
    // A worker that died: its job waits for the reaper and it does not count as live.
    await writeJob(db.couch, 'classify-job', 'processing', { 'worker-id': DEAD_WORKER, 'lease-expires-at': new Date(now - 5_000).toISOString() })
    for (let i = 0; i < 3; i++) await writeJob(db.couch, 'training-job', 'pending')
    await writeJob(db.couch, 'dataset', 'pending')
    for (let i = 0; i < 4; i++) await writeJob(db.couch, 'datafile', 'finished_successfully')
    await writeJob(db.couch, 'training-job', 'failed')
    await writeJob(db.couch, 'classify-job', 'cancelled')
  })
  afterAll(async () => { await db.drop() })

  it('prints the queue per type and state, running jobs with progress and live workers, within 100 columns', async () => {
    const c = capture()
    expect(await runStatus(['--couch-url', url], {}, c.io)).toBe(0)
    const text = c.out()
    expect(c.err()).toBe('')
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100)
    expect(text.split('\n')[1]).toBe(`Database: ${url}`)

    expect(row(text, 'JOBS')).toEqual(['JOBS', 'PENDING', 'PROCESSING', 'FINISHED', 'FAILED', 'CANCELLED'])
    expect(row(text, 'datafile')).toEqual(['datafile', '0', '2', '4', '0', '0'])
    expect(row(text, 'dataset')).toEqual(['dataset', '1', '0', '0', '0', '0'])
    expect(row(text, 'training')).toEqual(['training', '3', '1', '0', '1', '0'])
    expect(row(text, 'classify')).toEqual(['classify', '0', '1', '0', '0', '1'])
    expect(row(text, 'all')).toEqual(['all', '4', '4', '4', '1', '1'])
    expect(text).toContain('Queue depth (pending + processing): 8')

    expect(text).toContain('Running jobs: 4')
    const cells = row(text, training.slice(0, 8))
    expect(cells.slice(1, 3)).toEqual(['training', 'alice'])
    // Worker ids are cut in the middle to fit: host at the start, pid and tag at the end.
    expect(cells[3]).toMatch(/^worker@gpu-n.*….*4242:abcdef$/)
    expect(cells.slice(4, 8)).toEqual(['2', '1200/10000', '0.2346', '0.9813'])
    expect(cells[8]).toMatch(/^4[3-5]s$/)
    expect(text).toMatch(/classify {2}alice.*-\s+-\s+-\s+expired\n/)

    expect(text).toContain('Live workers: 2 holding a lease')
    // Each worker's earliest lease; the dead worker's job is listed above but it is not live.
    const live = text.slice(text.indexOf('Live workers:'))
    expect(row(live, CPU_WORKER)).toEqual([CPU_WORKER, '2', expect.stringMatching(/^(1[89]|20)s$/)])
    expect(row(live, GPU_WORKER)).toEqual([GPU_WORKER, '1', expect.stringMatching(/^4[3-5]s$/)])
    expect(live).not.toContain(DEAD_WORKER)
  })

  it('--json gives scripts the same report with full ids', async () => {
    const c = capture()
    expect(await runStatus(['--couch-url', url, '--json'], {}, c.io)).toBe(0)
    const report = JSON.parse(c.out()) as StatusReport
    expect(report.queueDepth).toBe(8)
    expect(report.counts['training-job']).toEqual({ pending: 3, processing: 1, finished_successfully: 0, failed: 1, cancelled: 0 })
    const job = report.running.find((j) => j.id === training)
    expect(job).toMatchObject({ type: 'training-job', tenant: 'alice', worker: GPU_WORKER, attempt: 2, progress: { iteration: 1200, maxIter: 10_000, loss: 0.23456, accuracy: 0.98134, lr: 0.00912 } })
    expect(report.workers.map((w) => [w.id, w.jobs])).toEqual([[CPU_WORKER, 2], [GPU_WORKER, 1]])
    expect(report.running.find((j) => j.worker === DEAD_WORKER)?.leaseRemainingSeconds).toBeLessThan(0)
  })

  it('--watch redraws with an ANSI clear until stopped, showing progress as it moves', async () => {
    const stop = new AbortController()
    const c = capture(stop.signal)
    const watching = runStatus(['--couch-url', url, '--watch', '--interval', '0.3'], {}, c.io)
    const frames = (): string[] => c.out().split('\u001b[H\u001b[2J\u001b[3J').filter((f) => f !== '')
    for (let i = 0; i < 100 && frames().length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    const raw = await db.couch.get(training) as Record<string, unknown> & { _id: string, progress: Record<string, unknown> }
    await db.couch.put({ ...raw, progress: { ...raw.progress, iteration: 1300 } })
    for (let i = 0; i < 200 && !frames().some((f) => f.includes('1300/10000')); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    stop.abort()
    expect(await watching).toBe(0)
    expect(frames().length).toBeGreaterThanOrEqual(2)
    expect(frames()[0]).toContain('1200/10000')
    expect(frames().at(-1)).toContain('1300/10000')
    expect(frames().at(-1)).toContain('Ctrl-C to quit')
  })

  it('says what it needs when there is no database to read', async () => {
    const c = capture()
    expect(await runStatus(['--couch-url', 'http://127.0.0.1:9/elastic-thought'], {}, c.io)).toBe(1)
    expect(c.err()).toMatch(/^elastic-thought status: could not read http:\/\/127\.0\.0\.1:9\/elastic-thought: /)
    const help = capture()
    expect(await runStatus(['--help'], {}, help.io)).toBe(0)
    expect(help.out()).toContain('shows every tenant')
    expect(help.out()).toContain('--couch-url')
  })

  it('works as a new user runs it: `elastic-thought status` beside a server with the embedded database', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'et-status-'))
    const server = spawnTs('src/server.ts', ['--data-dir', dataDir, '--port', '0', '--log-level', 'info'])
    try {
      await server.waitForLine(/elastic-thought listening/, 60_000)
      const status = spawnTs('src/server.ts', ['status', '--data-dir', dataDir])
      const exit = await status.exited
      expect(exit, status.stderr()).toEqual({ code: 0, signal: null })
      expect(status.stdout()).toContain(`Database: embedded database in ${dataDir} (server pid ${server.child.pid ?? ''})`)
      expect(row(status.stdout(), 'all')).toEqual(['all', '0', '0', '0', '0', '0'])
      expect(status.stdout()).toContain('Running jobs: none')
    } finally {
      server.child.kill('SIGTERM')
      await server.exited
    }
    // Once the server is gone, so is its pointer: the command says what to do instead of hanging.
    const after = spawnTs('src/server.ts', ['status', '--data-dir', dataDir])
    expect((await after.exited).code).toBe(2)
    expect(after.stderr()).toMatch(/no --couch-url, and no elastic-thought server with an embedded database is running on/)
    rmSync(dataDir, { recursive: true, force: true })
  }, 90_000)
})
