/*
 * npm run bench:dispatch — how long from POST /training-jobs until a worker has claimed the job
 * (state `processing`): the changes feed, the scheduler and the claim, end to end. Measured
 * over 200 jobs as started-at − created-at (both stamped on this machine), for the in-process
 * scheduler and for NSQ with two elastic-thought-worker processes. No nsqd can be installed
 * here, so nsqd is played by the protocol-level test peer (test/helpers/nsq-peer.ts).
 *
 * The jobs' dataset has failed on purpose, so each job fails right after its claim and the
 * bench measures dispatch, not training.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedCouch } from '../src/db/embedded-couch.js'
import { serveFiles } from '../test/helpers/http-files.js'
import { NsqPeer } from '../test/helpers/nsq-peer.js'
import { spawnTs } from '../test/helpers/processes.js'
import type { Spawned } from '../test/helpers/processes.js'
import { lenetNet, lenetSolver } from '../test/helpers/resources.js'
import { freePort, percentile, post, startServer } from './bench-helpers.js'

const JOBS = Number(process.env.BENCH_JOBS ?? 200)
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 20)

interface Result { name: string, latencies: number[] }

async function run (name: string, serverArgs: string[], workerArgs: string[], workerCount: number): Promise<Result> {
  const dataDir = mkdtempSync(join(tmpdir(), 'et-bench-dispatch-'))
  const children: Spawned[] = []
  const files = await serveFiles({ '/empty.tar.gz': { body: Buffer.alloc(0) } })
  // A CouchDB-protocol server on TCP that the server and the worker processes all reach.
  const couch = await startEmbeddedCouch({ dataDir: join(dataDir, 'db'), transport: 'tcp', restart: false })
  const couchUrl = `${couch.serverUrl}/elastic-thought`
  const shared = ['--couch-url', couchUrl, '--blob-store-url', `file://${dataDir}/blobs`, '--allow-private-urls', '--log-level', 'warn']
  try {
    const { server, base } = await startServer(await freePort(), ['--data-dir', dataDir, ...shared, ...serverArgs])
    children.push(server)
    for (let w = 0; w < workerCount; w++) {
      // At info level, so the start-up line this waits for is printed.
      const worker = spawnTs('src/worker.ts', [...shared, '--worker-id', `bench-${w}`, ...workerArgs, '--log-level', 'info'])
      children.push(worker)
      await worker.waitForLine(/elastic-thought-worker started/)
    }
    await post(`${base}/users`, undefined, { username: 'bench', email: 'bench@example.com', password: 'benchmark password' })
    const auth = `Basic ${Buffer.from('bench:benchmark password').toString('base64')}`
    const datafile = await post(`${base}/datafiles`, auth, { url: files.url('/empty.tar.gz') })
    const dataset = await post(`${base}/datasets`, auth, { training: { 'datafile-id': datafile.id, 'split-percentage': 0.5 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.5 } })
    await waitEnded(base, auth, `/datasets/${String(dataset.id)}`)
    const solver = await post(`${base}/solvers`, auth, { 'dataset-id': dataset.id, specification: lenetSolver, 'specification-net': lenetNet })
    const ids: string[] = []
    for (let i = 0; i < JOBS; i++) {
      ids.push(String((await post(`${base}/training-jobs`, auth, { 'solver-id': solver.id })).id))
      await new Promise((resolve) => setTimeout(resolve, GAP_MS))
    }
    const latencies: number[] = []
    for (const id of ids) {
      const job = await waitEnded(base, auth, `/training-jobs/${id}`)
      if (typeof job['started-at'] !== 'string') throw new Error(`job ${id} was never claimed: ${String(job['processing-log'])}`)
      latencies.push(Date.parse(job['started-at']) - Date.parse(String(job['created-at'])))
    }
    return { name, latencies: latencies.sort((a, b) => a - b) }
  } finally {
    for (const child of children.reverse()) child.child.kill('SIGTERM')
    await Promise.all(children.map(async (c) => await c.exited))
    await couch.close()
    await files.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

async function waitEnded (base: string, auth: string, path: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const doc = await (await fetch(`${base}${path}`, { headers: { authorization: auth } })).json() as Record<string, unknown>
    if (doc['processing-state'] !== 'pending' && doc['processing-state'] !== 'processing') return doc
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${path} did not end`)
}

async function main (): Promise<void> {
  const inProcess = await run('in-process scheduler', ['--workers', '2'], [], 0)
  const nsqd = await NsqPeer.start()
  let nsq: Result
  try {
    nsq = await run('NSQ (test peer) + 2 worker processes', ['--scheduler', 'nsq', '--nsqd', nsqd.address], ['--nsqd', nsqd.address], 2)
  } finally {
    await nsqd.stop()
  }
  const row = (r: Result): string => `${r.name.padEnd(40)} p50 ${String(percentile(r.latencies, 50)).padStart(4)} ms   p99 ${String(percentile(r.latencies, 99)).padStart(4)} ms   max ${String(r.latencies[r.latencies.length - 1]).padStart(4)} ms`
  process.stdout.write([
    `bench:dispatch — POST /training-jobs → claimed (processing), ${JOBS} jobs, one every ${GAP_MS} ms`,
    row(inProcess),
    row(nsq),
    'targets: p50 < 50 ms in-process, < 100 ms NSQ',
    ''
  ].join('\n'))
}

await main()
