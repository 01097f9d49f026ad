import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { serveFiles } from '../helpers/http-files.js'
import { settleJob } from '../helpers/settle.js'
import { DEPLOY_NET, IMAGE_DATA_NET, quadrantArchive, quadrantPng, solverText } from './runners/runner-fixtures.js'

type Doc = Record<string, unknown> & { id: string, 'processing-state': string, 'processing-log': string }

function multipart (boundary: string, parts: Array<{ name: string, value?: string, filename?: string, body?: Buffer, type?: string }>): Buffer {
  const chunks: Buffer[] = []
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type === undefined ? '' : `Content-Type: ${part.type}\r\n`}\r\n`))
    chunks.push(part.body ?? Buffer.from(part.value ?? ''), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

/**
 * The whole product through its REST API with the in-process scheduler: upload a datafile,
 * split it, train with the builtin engine, download the model, classify uploaded and fetched
 * images. Nothing below reaches into the database or the blob store.
 */
describe('upload → split → train → classify, through the API', () => {
  let t: TestApp
  let auth: string
  let images: Awaited<ReturnType<typeof serveFiles>>

  beforeAll(async () => {
    images = await serveFiles({ '/ne.png': { body: quadrantPng('ne', 9001), type: 'image/png' }, '/sw.png': { body: quadrantPng('sw', 9002), type: 'image/png' } })
    t = await startTestApp({ logLevel: (process.env.ET_TEST_LOG ?? 'silent') as 'silent' }, { runJobs: true })
    auth = await signUp(t.app, 'trainer')
  })
  afterAll(async () => {
    await t.close()
    await images.close()
  })

  const api = async (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, json: () => Doc, body: string, raw: Buffer, headers: Record<string, unknown> }> => {
    const res = await t.app.inject({ method, url, headers: { authorization: auth, ...headers }, ...(payload === undefined ? {} : { payload: payload as Buffer }) })
    return { status: res.statusCode, json: () => res.json(), body: res.body, raw: res.rawPayload, headers: res.headers }
  }
  const settle = async (path: string): Promise<Doc> => await settleJob(t.app, auth, path, 90_000)

  it('learns to tell the quadrants apart and classifies new images', async () => {
    const boundary = '----et-e2e'
    const upload = await api('POST', '/datafiles', multipart(boundary, [{ name: 'file', filename: 'quadrants.tar.gz', body: quadrantArchive(12, 1), type: 'application/gzip' }]), { 'content-type': `multipart/form-data; boundary=${boundary}` })
    expect(upload.status, upload.body).toBe(201)
    const datafile = upload.json()
    const dataset = (await api('POST', '/datasets', { training: { 'datafile-id': datafile.id, 'split-percentage': 75 }, test: { 'datafile-id': datafile.id, 'split-percentage': 25 } })).json()
    const solver = await api('POST', '/solvers', { 'dataset-id': dataset.id, specification: solverText(40), 'specification-net': IMAGE_DATA_NET })
    expect(solver.status, solver.body).toBe(201)
    const job = (await api('POST', '/training-jobs', { 'solver-id': solver.json().id })).json()

    const trained = await settle(`/training-jobs/${job.id}`)
    expect(trained['processing-state'], trained['processing-log']).toBe('finished_successfully')
    expect(trained).toMatchObject({ labels: ['ne', 'nw', 'se', 'sw'], 'trained-model-url': `cbfs://${job.id}/trained.caffemodel`, attempts: 1 })
    const progress = trained.progress as { iteration: number, 'max-iter': number, series: unknown[], 'test-outputs': Record<string, number> }
    expect(progress.iteration).toBe(40)
    expect(progress['max-iter']).toBe(40)
    expect(progress.series.length).toBeGreaterThan(3)
    expect(progress['test-outputs'].accuracy).toBeGreaterThan(0.6)
    expect((trained.snapshots as unknown[]).length).toBeGreaterThanOrEqual(4)

    const log = await api('GET', `/training-jobs/${job.id}/logs`)
    expect(log.status).toBe(200)
    expect(log.body).toContain('Optimization Done.')
    const model = await api('GET', `/training-jobs/${job.id}/model`)
    expect(model.status).toBe(200)
    expect(model.headers['content-type']).toBe('application/octet-stream')
    expect(model.raw.length).toBeGreaterThan(100)

    const classifier = await api('POST', '/classifiers', { 'training-job-id': job.id, specification: DEPLOY_NET, scale: '1', 'image-width': '12', 'image-height': '12', color: false })
    expect(classifier.status, classifier.body).toBe(201)
    const request = await api('POST', `/classifiers/${classifier.json().id}/classify`, multipart(boundary, [
      { name: 'urls', value: images.url('/ne.png') },
      { name: 'urls', value: images.url('/sw.png') },
      { name: 'files', filename: 'mine-nw.png', body: quadrantPng('nw', 9003), type: 'image/png' },
      { name: 'files', filename: 'mine-se.png', body: quadrantPng('se', 9004), type: 'image/png' }
    ]), { 'content-type': `multipart/form-data; boundary=${boundary}` })
    expect(request.status, request.body).toBe(201)
    const done = await settle(`/classify-jobs/${request.json().id}`)
    expect(done['processing-state'], done['processing-log']).toBe('finished_successfully')
    const sha = (url: string): string => createHash('sha1').update(url).digest('hex')
    const results = done.results as Record<string, string>
    expect(Object.keys(results).sort()).toEqual([sha(images.url('/ne.png')), sha(images.url('/sw.png')), 'mine-nw.png', 'mine-se.png'].sort())
    const expected: Record<string, string> = { [sha(images.url('/ne.png'))]: 'ne', [sha(images.url('/sw.png'))]: 'sw', 'mine-nw.png': 'nw', 'mine-se.png': 'se' }
    const correct = Object.entries(expected).filter(([key, label]) => results[key] === label).length
    expect(correct).toBeGreaterThanOrEqual(3)
    const predictions = done.predictions as Record<string, Array<{ label: string, probability: number }>>
    for (const top of Object.values(predictions)) {
      expect(top.length).toBe(4)
      expect(top.reduce((sum, p) => sum + p.probability, 0)).toBeCloseTo(1, 3)
    }
  })
})
