import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClassifyJob } from '../../../models/classify-job.js'
import { DEPLOY_NET, IMAGE_DATA_NET, QUADRANTS, quadrantPng, solverText } from './runner-fixtures.js'
import type { Quadrant } from './runner-fixtures.js'
import { startRunnerHarness } from './runner-harness.js'
import type { RunnerHarness } from './runner-harness.js'

let h: RunnerHarness
let server: Server
let base = ''
let trainingJobId = ''

// Clean images (little noise) of each class, served over HTTP on loopback.
const served: Record<string, { status: number, body: Buffer }> = {
  '/not-an-image.png': { status: 200, body: Buffer.from('this is not a PNG at all') }
}
for (const q of QUADRANTS) served[`/${q}.png`] = { status: 200, body: quadrantPng(q, 900 + QUADRANTS.indexOf(q), 20) }

beforeAll(async () => {
  server = createServer((req, res) => {
    const file = served[(req.url ?? '').split('?')[0] ?? '']
    if (file === undefined) res.writeHead(404).end('not found')
    else res.writeHead(file.status, { 'content-type': 'image/png' }).end(file.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  h = await startRunnerHarness()
  const { jobId } = await h.trainingJob(IMAGE_DATA_NET, solverText(60).replace('snapshot: 10', 'snapshot: 0'))
  await h.deliver(jobId)
  const trained = await h.doc(jobId)
  if (trained['processing-state'] !== 'finished_successfully') throw new Error(`training failed: ${trained['processing-log']}`)
  trainingJobId = jobId
})
afterAll(async () => {
  await h.close()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

async function classifyJob (urls: string[], options: { color?: boolean } = {}): Promise<string> {
  const classifier = await h.post('/classifiers', { 'training-job-id': trainingJobId, specification: DEPLOY_NET, scale: '1', 'image-width': '12', 'image-height': '12', color: options.color ?? false })
  return await h.post(`/classifiers/${classifier}/classify`, { urls })
}

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex')

describe('classify runner', () => {
  it('classifies images by URL and an uploaded image, keyed as the original did, with top-k probabilities', async () => {
    const urls = QUADRANTS.map((q) => `${base}/${q}.png`)
    const id = await classifyJob(urls)
    // An uploaded image rides along: stored in the blob store, named by its file name.
    await h.blobs.put(`${id}/images/upload-0`, quadrantPng('sw', 4242, 20))
    const doc = await h.doc(id) as ClassifyJob
    await h.patch(id, {
      images: [...doc.images, { key: 'upload-0', url: null, filename: 'mine.png', 'blob-url': `cbfs://${id}/images/upload-0` }],
      results: { ...doc.results, 'upload-0': 'pending' }
    })
    expect(await h.deliver(id)).toEqual({ kind: 'done' })
    const job = await h.doc(id) as ClassifyJob
    expect(job['processing-state'], job['processing-log']).toBe('finished_successfully')

    const expected: Record<string, Quadrant> = Object.fromEntries(QUADRANTS.map((q) => [sha1(`${base}/${q}.png`), q]))
    expected['upload-0'] = 'sw'
    expect(Object.keys(job.results).sort()).toEqual(Object.keys(expected).sort())
    let correct = 0
    for (const [key, truth] of Object.entries(expected)) {
      const top = job.predictions[key] ?? []
      // Four classes, top-5 asked: every class once, best first, probabilities that sum to 1.
      expect(top.map((p) => p.label).sort()).toEqual([...QUADRANTS])
      expect(top.map((p) => p.index).sort()).toEqual([0, 1, 2, 3])
      expect(top.every((p) => p.label === QUADRANTS[p.index])).toBe(true)
      const probabilities = top.map((p) => p.probability)
      expect(probabilities).toEqual([...probabilities].sort((a, b) => b - a))
      expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4)
      expect(job.results[key]).toBe(top[0]?.label)
      if (job.results[key] === truth) correct++
    }
    // The net was trained for 60 iterations on noisy images; clean ones are mostly right.
    expect(correct).toBeGreaterThanOrEqual(4)

    expect(job['std-out-url']).toBe(`cbfs://${id}/stdout`)
    expect(job['std-err-url']).toBe(`cbfs://${id}/stderr`)
    expect(JSON.parse(await h.text(`${id}/stdout`)).results).toHaveLength(5)
    expect(await h.workDirs()).toEqual([])
  })

  it('an image that cannot be fetched fails the job with its URL', async () => {
    const id = await classifyJob([`${base}/ne.png`, `${base}/missing.png`])
    await h.deliver(id)
    const job = await h.doc(id)
    expect(job['processing-state']).toBe('failed')
    expect(job['processing-log']).toBe(`image ${base}/missing.png could not be fetched: fetching ${base}/missing.png failed: the server answered HTTP 404`)
  })

  it('an image that does not decode fails the job with its URL', async () => {
    const id = await classifyJob([`${base}/not-an-image.png`])
    await h.deliver(id)
    const job = await h.doc(id)
    expect(job['processing-state']).toBe('failed')
    expect(job['processing-log']).toMatch(new RegExp(`^image ${base}/not-an-image\\.png could not be decoded as an image: `))
  })

  it('waits for a training job that is still running, and fails if it failed', async () => {
    const id = await classifyJob([`${base}/ne.png`])
    await h.patch(trainingJobId, { 'processing-state': 'processing' })
    try {
      expect(await h.deliver(id)).toEqual({ kind: 'retry', delayMs: 1000, reason: `waiting for training job ${trainingJobId} (processing)` })
      await h.patch(trainingJobId, { 'processing-state': 'failed', 'processing-log': 'out of memory' })
      await h.deliver(id)
      const job = await h.doc(id)
      expect(job['processing-state']).toBe('failed')
      expect(job['processing-log']).toBe(`the classifier's training job ${trainingJobId} failed: out of memory`)
    } finally {
      await h.patch(trainingJobId, { 'processing-state': 'finished_successfully', 'processing-log': '' })
    }
  })
})
