/*
 * npm run bench:api — authenticated GET /training-jobs/:id against the real server (embedded
 * database, Basic auth, tenancy check, zod serialization) beside a bare Fastify route serving
 * the same document, each in its own process, loaded by autocannon from this process.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { spawnTs } from '../test/helpers/processes.js'
import type { Spawned } from '../test/helpers/processes.js'
import { lenetNet, lenetSolver } from '../test/helpers/resources.js'
import { freePort, post, startServer } from './bench-helpers.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32)

async function warmUp (url: string, headers: Record<string, string>): Promise<void> {
  // JIT, caches, connection pools.
  await autocannon({ url, headers, connections, duration: 2 })
}

async function load (title: string, url: string, headers: Record<string, string>): Promise<autocannon.Result> {
  const result = await autocannon({ url, headers, connections, duration: seconds })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${title}: ${result.non2xx} non-2xx responses, ${result.errors} errors`)
  return result
}

async function main (): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'et-bench-api-'))
  const children: Spawned[] = []
  try {
    const { server, base } = await startServer(await freePort(), ['--data-dir', dataDir, '--log-level', 'warn'])
    children.push(server)
    await post(`${base}/users`, undefined, { username: 'bench', email: 'bench@example.com', password: 'benchmark password' })
    const auth = `Basic ${Buffer.from('bench:benchmark password').toString('base64')}`
    const datafile = await post(`${base}/datafiles`, auth, { url: 'https://example.com/mnist.tar.gz' })
    const dataset = await post(`${base}/datasets`, auth, { training: { 'datafile-id': datafile.id, 'split-percentage': 0.8 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.2 } })
    const solver = await post(`${base}/solvers`, auth, { 'dataset-id': dataset.id, specification: lenetSolver, 'specification-net': lenetNet })
    const job = await post(`${base}/training-jobs`, auth, { 'solver-id': solver.id })
    const path = `/training-jobs/${String(job.id)}`

    const bare = spawnTs('bench/bare-server.ts', [JSON.stringify(job)])
    children.push(bare)
    const bareUrl = String(JSON.parse(await bare.waitForLine(/bare listening/)).address)

    // The machine's speed drifts (a shared 2-core VM): alternate the two servers in short
    // rounds so both see the same conditions, and compare medians.
    await warmUp(`${base}${path}`, { authorization: auth })
    await warmUp(`${bareUrl}${path}`, {})
    const ours: autocannon.Result[] = []
    const bareRuns: autocannon.Result[] = []
    for (let round = 0; round < rounds; round++) {
      ours.push(await load('elastic-thought', `${base}${path}`, { authorization: auth }))
      bareRuns.push(await load('bare fastify', `${bareUrl}${path}`, {}))
    }
    const median = (runs: autocannon.Result[]): autocannon.Result => [...runs].sort((a, b) => a.requests.average - b.requests.average)[Math.floor(runs.length / 2)] as autocannon.Result
    const perRound = ours.map((r, i) => r.requests.average / (bareRuns[i]?.requests.average ?? Number.NaN))
    const row = (name: string, r: autocannon.Result): string =>
      `${name.padEnd(44)} ${r.requests.average.toFixed(0).padStart(8)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms`
    const ratio = median(ours).requests.average / median(bareRuns).requests.average
    process.stdout.write([
      `bench:api — ${connections} connections, ${rounds} alternating rounds of ${seconds} s, 2-core machine, server at --log-level warn (medians)`,
      row('GET /training-jobs/:id (auth, tenancy, zod)', median(ours)),
      row('bare Fastify route, same document', median(bareRuns)),
      `ratio: ${(ratio * 100).toFixed(1)}% of bare (target ≥ 50%); per round ${perRound.map((r) => `${(r * 100).toFixed(0)}%`).join(', ')}`,
      ''
    ].join('\n'))
  } finally {
    for (const child of children) child.child.kill('SIGTERM')
    await Promise.all(children.map(async (c) => await c.exited))
    rmSync(dataDir, { recursive: true, force: true })
  }
}

await main()
