import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { createChain, lenetDeploy, lenetNet, lenetSolver } from '../helpers/resources.js'
import { keyFromBlobUri } from '../../blobstore/blob-uri.js'

describe('resources', () => {
  let t: TestApp
  let auth: string

  beforeAll(async () => {
    t = await startTestApp()
    auth = await signUp(t.app, 'alice')
  })
  afterAll(async () => { await t.close() })

  it('creates every resource with the original field names, owned by the caller and pending', async () => {
    const chain = await createChain(t.app, auth)
    const get = async (path: string): Promise<Record<string, unknown>> => {
      const res = await t.app.inject({ url: path, headers: { authorization: auth } })
      expect(res.statusCode, res.body).toBe(200)
      return res.json()
    }
    const datafile = await get(`/datafiles/${chain.datafile}`)
    expect(datafile).toMatchObject({ id: chain.datafile, _id: chain.datafile, type: 'datafile', 'user-id': 'user:alice', 'processing-state': 'pending', url: 'https://example.com/data/mnist.tar.gz', attempts: 0, 'worker-id': null })
    expect(datafile._rev).toMatch(/^1-/)

    const dataset = await get(`/datasets/${chain.dataset}`)
    expect(dataset).toMatchObject({ training: { 'datafile-id': chain.datafile, 'split-percentage': 0.7 }, test: { 'datafile-id': chain.datafile, 'split-percentage': 0.3 }, 'processing-state': 'pending' })

    const solver = await get(`/solvers/${chain.solver}`)
    expect(solver).toMatchObject({ 'dataset-id': chain.dataset, 'data-layer-type': 'Data', 'max-iter': 10000 })
    // The prototxt files are stored under the solver and referenced with the original's cbfs:// URIs.
    const spec = await t.deps.blobs.get(keyFromBlobUri(String(solver['specification-url'])))
    const chunks: Buffer[] = []
    for await (const c of spec) chunks.push(Buffer.from(c as Uint8Array))
    expect(Buffer.concat(chunks).toString('utf8')).toBe(lenetSolver)
    expect(solver['specification-net-url']).toBe(`cbfs://${chain.solver}/solver-net.prototxt`)

    const job = await get(`/training-jobs/${chain.trainingJob}`)
    expect(job).toMatchObject({ 'solver-id': chain.solver, 'processing-state': 'pending', 'trained-model-url': null, labels: null, progress: null, snapshots: [] })

    const classifier = await get(`/classifiers/${chain.classifier}`)
    expect(classifier).toMatchObject({ 'training-job-id': chain.trainingJob, scale: '255', 'image-width': '28', 'image-height': '28', color: false, gpu: false, 'specification-url': `cbfs://${chain.classifier}/classifier.prototxt` })

    const classifyJob = await get(`/classify-jobs/${chain.classifyJob}`)
    const key = createHash('sha1').update('https://example.com/img/7.png').digest('hex')
    expect(classifyJob).toMatchObject({ 'classifier-id': chain.classifier, 'processing-state': 'pending', results: { [key]: 'pending' } })
  })

  it('accepts numbers for the classifier fields the original sent as strings', async () => {
    const chain = await createChain(t.app, auth)
    const res = await t.app.inject({ method: 'POST', url: '/classifiers', headers: { authorization: auth }, payload: { 'training-job-id': chain.trainingJob, specification: lenetDeploy, scale: 255, 'image-width': 28, 'image-height': 28 } })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json()).toMatchObject({ scale: '255', 'image-width': '28', color: false })
  })

  it('takes the classify request as multipart with repeated urls fields, as the original did', async () => {
    const chain = await createChain(t.app, auth)
    const boundary = '----et-test-boundary'
    const urls = ['https://example.com/a.png', 'https://example.com/b.png']
    const body = urls.map((u) => `--${boundary}\r\nContent-Disposition: form-data; name="urls"\r\n\r\n${u}\r\n`).join('') + `--${boundary}--\r\n`
    const res = await t.app.inject({ method: 'POST', url: `/classifiers/${chain.classifier}/classify`, headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })
    expect(res.statusCode, res.body).toBe(201)
    const keys = urls.map((u) => createHash('sha1').update(u).digest('hex'))
    expect(Object.keys(res.json().results).sort()).toEqual([...keys].sort())
    expect(res.json().images.map((i: { url: string }) => i.url)).toEqual(urls)
  })

  it('takes the solver prototxt files as a multipart upload (curl -F specification=@file)', async () => {
    const chain = await createChain(t.app, auth)
    const boundary = '----et-solver-boundary'
    const file = (name: string, content: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.prototxt"\r\nContent-Type: text/plain\r\n\r\n${content}\r\n`
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="dataset-id"\r\n\r\n${chain.dataset}\r\n` + file('specification', lenetSolver) + file('specification-net', lenetNet) + `--${boundary}--\r\n`
    const res = await t.app.inject({ method: 'POST', url: '/solvers', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json()).toMatchObject({ 'dataset-id': chain.dataset, 'data-layer-type': 'Data', 'source-specification-url': null })
    const dup = `--${boundary}\r\nContent-Disposition: form-data; name="dataset-id"\r\n\r\n${chain.dataset}\r\n` + file('specification', lenetSolver) + file('specification', lenetSolver) + `--${boundary}--\r\n`
    const twice = await t.app.inject({ method: 'POST', url: '/solvers', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: dup })
    expect(twice.statusCode).toBe(400)
    expect(twice.json().message).toBe('body.specification: given more than once')
  })

  it('lists newest first, one page at a time, with a cursor that walks every item once', async () => {
    const t2 = await startTestApp()
    try {
      const bob = await signUp(t2.app, 'bob')
      const created: string[] = []
      for (let i = 0; i < 7; i++) {
        const res = await t2.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: bob }, payload: { url: `https://example.com/${i}.tar.gz` } })
        created.push(res.json().id)
        // created-at has millisecond resolution; keep the order unambiguous.
        await new Promise((resolve) => setTimeout(resolve, 3))
      }
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const query: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${cursor}`
        const res = await t2.app.inject({ url: `/datafiles${query}`, headers: { authorization: bob } })
        expect(res.statusCode, res.body).toBe(200)
        const page = res.json() as { items: Array<{ id: string }>, next: string | null }
        expect(page.items.length).toBeLessThanOrEqual(3)
        seen.push(...page.items.map((i) => i.id))
        cursor = page.next
        pages++
      } while (cursor !== null && pages < 10)
      expect(pages).toBe(3)
      expect(seen).toEqual([...created].reverse())
    } finally {
      await t2.close()
    }
  })

  it('refuses to delete what others depend on (409 naming them), then deletes leaf first', async () => {
    const chain = await createChain(t.app, auth)
    const del = async (path: string) => await t.app.inject({ method: 'DELETE', url: path, headers: { authorization: auth } })
    const blocked = await del(`/datafiles/${chain.datafile}`)
    expect(blocked.statusCode).toBe(409)
    expect(blocked.json()).toMatchObject({ code: 'ET_CONFLICT' })
    expect(blocked.json().message).toContain(`dataset ${chain.dataset}`)

    expect((await del(`/classify-jobs/${chain.classifyJob}`)).statusCode).toBe(204)
    expect((await del(`/classifiers/${chain.classifier}`)).statusCode).toBe(204)
    // The classifier's stored prototxt went with it.
    expect(await t.deps.blobs.exists(`${chain.classifier}/classifier.prototxt`)).toBe(false)
    expect((await del(`/training-jobs/${chain.trainingJob}`)).statusCode).toBe(204)
    expect((await del(`/solvers/${chain.solver}`)).statusCode).toBe(204)
    expect((await del(`/datasets/${chain.dataset}`)).statusCode).toBe(204)
    expect((await del(`/datafiles/${chain.datafile}`)).statusCode).toBe(204)
    const gone = await t.app.inject({ url: `/datafiles/${chain.datafile}`, headers: { authorization: auth } })
    expect(gone.statusCode).toBe(404)
  })

  it('cancels a pending job once; a second cancel is a no-op; an ended job cannot be cancelled', async () => {
    const chain = await createChain(t.app, auth)
    const cancel = async () => await t.app.inject({ method: 'POST', url: `/training-jobs/${chain.trainingJob}/cancel`, headers: { authorization: auth } })
    const first = await cancel()
    expect(first.statusCode, first.body).toBe(200)
    expect(first.json()).toMatchObject({ 'processing-state': 'cancelled', 'processing-log': 'cancelled by the user' })
    const second = await cancel()
    expect(second.statusCode).toBe(200)
    expect(second.json()._rev).toBe(first.json()._rev)

    const cj = await t.app.inject({ method: 'POST', url: `/classify-jobs/${chain.classifyJob}/cancel`, headers: { authorization: auth } })
    expect(cj.json()['processing-state']).toBe('cancelled')

    // A finished job: the worker's doing, simulated by writing the state directly.
    const other = await createChain(t.app, auth)
    const raw = await t.deps.couch.get(other.trainingJob) as Record<string, unknown> & { _id: string }
    await t.deps.couch.put({ ...raw, 'processing-state': 'finished_successfully' })
    const ended = await t.app.inject({ method: 'POST', url: `/training-jobs/${other.trainingJob}/cancel`, headers: { authorization: auth } })
    expect(ended.statusCode).toBe(409)
    expect(ended.json().message).toMatch(/already ended \(finished_successfully\)/)
  })

  it('checks prototxt at creation: a solver that does not parse is a 400 naming the line', async () => {
    const chain = await createChain(t.app, auth)
    const res = await t.app.inject({ method: 'POST', url: '/solvers', headers: { authorization: auth }, payload: { 'dataset-id': chain.dataset, specification: 'base_lr: 0.01\nbogus_field: 3\n', 'specification-net': lenetNet } })
    expect(res.statusCode).toBe(400)
    expect(res.json().message).toMatch(/specification-url: solver\.prototxt:2:\d+: .*bogus_field/)
    const noData = await t.app.inject({ method: 'POST', url: '/solvers', headers: { authorization: auth }, payload: { 'dataset-id': chain.dataset, specification: lenetSolver, 'specification-net': lenetDeploy } })
    expect(noData.statusCode).toBe(400)
    expect(noData.json().message).toMatch(/no Data or ImageData layer/)
  })
})
