import { createServer } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { runPublishMetrics } from '../../src/commands/publish-metrics.js'
import { openTestDb } from '../jobs/life-cycle-fixtures.js'
import type { TestDb } from '../jobs/life-cycle-fixtures.js'
import { spawnTs } from '../helpers/processes.js'
import { writeJob } from '../metrics/job-fixtures.js'

interface Recorded {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: unknown
}

interface Datum {
  MetricName: string
  Dimensions: Array<{ Name: string, Value: string }>
  Value: number
  Unit: string
  Timestamp: number
}

/**
 * Stands in for CloudWatch: records each request as the SDK sent it and answers as the AWS
 * JSON 1.0 protocol does. This SDK version speaks JSON 1.0 to CloudWatch (X-Amz-Target
 * GraniteServiceVersion20100801.<Operation>), no longer the query protocol's form bodies;
 * a request in any other protocol fails the test rather than being guessed at.
 */
async function startFakeCloudWatch (): Promise<{ url: string, requests: Recorded[], close: () => Promise<void> }> {
  const requests: Recorded[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let raw = Buffer.concat(chunks)
      // PutMetricData may be gzipped by the SDK (request compression) once it is large.
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw)
      let body: unknown = raw.toString('utf8')
      if (req.headers['content-type'] === 'application/x-amz-json-1.0') body = JSON.parse(raw.toString('utf8'))
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `req-${requests.length}` }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => { await new Promise<void>((resolve) => server.close(() => resolve())) }
  }
}

const awsEnv = { AWS_ACCESS_KEY_ID: 'AKIDELASTICTEST', AWS_SECRET_ACCESS_KEY: 'not-a-real-secret', AWS_REGION: 'eu-west-1' }

function datum (request: Recorded, name: string, dimensions: Record<string, string>): Datum {
  const body = request.body as { MetricData: Datum[] }
  const want = Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value }))
  const found = body.MetricData.filter((d) => d.MetricName === name && JSON.stringify(d.Dimensions) === JSON.stringify(want))
  if (found.length !== 1) throw new Error(`${found.length} data points named ${name} with ${JSON.stringify(want)} in ${JSON.stringify(body)}`)
  return found[0] as Datum
}

describe('elastic-thought publish-metrics', () => {
  let db: TestDb
  let cw: Awaited<ReturnType<typeof startFakeCloudWatch>>
  let runningTraining: string

  beforeAll(async () => {
    db = await openTestDb()
    cw = await startFakeCloudWatch()
    // Queue depth 5: training 2 pending + 1 processing, datafile 1 pending, classify 1 processing.
    for (let i = 0; i < 2; i++) await writeJob(db.couch, 'training-job', 'pending')
    runningTraining = await writeJob(db.couch, 'training-job', 'processing')
    await writeJob(db.couch, 'datafile', 'pending')
    for (let i = 0; i < 3; i++) await writeJob(db.couch, 'datafile', 'finished_successfully')
    await writeJob(db.couch, 'classify-job', 'processing')
    await writeJob(db.couch, 'dataset', 'failed')
    await writeJob(db.couch, 'training-job', 'cancelled')
  })
  afterAll(async () => {
    await cw.close()
    await db.drop()
  })

  const couchUrl = (): string => `${inject('couchUrl')}/${db.couch.name}`

  it('puts QueueDepth by Cluster (and per job type) into the ElasticThought namespace every interval, signed, until SIGTERM', async () => {
    const publisher = spawnTs('src/server.ts', ['publish-metrics', '--couch-url', couchUrl(), '--cloudwatch-endpoint', cw.url, '--cluster', 'test-cluster', '--interval', '1'], awsEnv)
    try {
      await publisher.waitForLine(/queue depth published/, 30_000)
      const first = cw.requests[0]
      if (first === undefined) throw new Error('no request recorded')
      expect(first.method).toBe('POST')
      expect(first.path).toBe('/')
      expect(first.headers['content-type']).toBe('application/x-amz-json-1.0')
      expect(first.headers['x-amz-target']).toBe('GraniteServiceVersion20100801.PutMetricData')
      expect(first.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDELASTICTEST\/\d{8}\/eu-west-1\/monitoring\/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$/)

      const body = first.body as { Namespace: string, MetricData: Datum[] }
      expect(body.Namespace).toBe('ElasticThought')
      const depth = datum(first, 'QueueDepth', { Cluster: 'test-cluster' })
      expect(depth.Value).toBe(5)
      expect(depth.Unit).toBe('Count')
      expect(Math.abs(depth.Timestamp * 1000 - Date.now())).toBeLessThan(30_000)
      expect(datum(first, 'QueueDepth', { Cluster: 'test-cluster', JobType: 'training-job' }).Value).toBe(3)
      expect(datum(first, 'QueueDepth', { Cluster: 'test-cluster', JobType: 'datafile' }).Value).toBe(1)
      expect(datum(first, 'QueueDepth', { Cluster: 'test-cluster', JobType: 'classify-job' }).Value).toBe(1)
      expect(datum(first, 'QueueDepth', { Cluster: 'test-cluster', JobType: 'dataset' }).Value).toBe(0)
      expect(datum(first, 'PendingJobs', { Cluster: 'test-cluster' }).Value).toBe(3)
      expect(datum(first, 'ProcessingJobs', { Cluster: 'test-cluster' }).Value).toBe(2)

      // The next rounds read the database again: a job that ends leaves the queue.
      const raw = await db.couch.get(runningTraining) as Record<string, unknown> & { _id: string }
      await db.couch.put({ ...raw, 'processing-state': 'finished_successfully', 'finished-at': new Date().toISOString(), 'lease-expires-at': null })
      const deadline = Date.now() + 15_000
      while (!cw.requests.some((r) => datum(r, 'QueueDepth', { Cluster: 'test-cluster' }).Value === 4)) {
        if (Date.now() > deadline) throw new Error(`no data point with the new depth; values: ${cw.requests.map((r) => datum(r, 'QueueDepth', { Cluster: 'test-cluster' }).Value).join(',')}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const later = cw.requests.at(-1) as Recorded
      expect(datum(later, 'QueueDepth', { Cluster: 'test-cluster', JobType: 'training-job' }).Value).toBe(2)
      // About one request per --interval, not a burst.
      const times = cw.requests.map((r) => Date.parse(String(r.headers['x-amz-date']).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')))
      for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(0)
      expect(cw.requests.length).toBeLessThanOrEqual(Math.ceil((Date.now() - (times[0] ?? 0)) / 1000) + 2)
    } finally {
      publisher.child.kill('SIGTERM')
    }
    expect(await publisher.exited).toEqual({ code: 0, signal: null })
  }, 60_000)

  it('--once publishes one set with the default cluster and exits 0; 1 when CloudWatch refuses it', async () => {
    const before = cw.requests.length
    const lines: string[] = []
    const io = { out: (s: string) => { lines.push(s) }, err: (s: string) => { lines.push(s) } }
    expect(await runPublishMetrics(['--couch-url', couchUrl(), '--cloudwatch-endpoint', cw.url, '--once', '--log-level', 'silent'], awsEnv, io)).toBe(0)
    expect(cw.requests.length).toBe(before + 1)
    expect(datum(cw.requests.at(-1) as Recorded, 'QueueDepth', { Cluster: 'default' }).Value).toBe(4)

    // Nothing listens there: the round fails, and --once says so in its exit code.
    expect(await runPublishMetrics(['--couch-url', couchUrl(), '--cloudwatch-endpoint', 'http://127.0.0.1:9', '--once', '--log-level', 'silent'], awsEnv, io)).toBe(1)
  })

  it('rejects bad flags with one line naming the flag', async () => {
    const lines: string[] = []
    const io = { out: (s: string) => { lines.push(s) }, err: (s: string) => { lines.push(s) } }
    expect(await runPublishMetrics(['--couch-url', couchUrl(), '--interval', '0'], awsEnv, io)).toBe(2)
    expect(lines.join('')).toBe('elastic-thought publish-metrics: invalid --interval: must be at least 1 second\n')
    lines.length = 0
    expect(await runPublishMetrics(['--data-dir', '/nonexistent-et-dir'], awsEnv, io)).toBe(2)
    expect(lines.join('')).toMatch(/no --couch-url, and no elastic-thought server with an embedded database is running on \/nonexistent-et-dir/)
  })
})
