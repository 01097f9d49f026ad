import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inspectArchive } from '../../src/jobs/archive/index.js'
import { keyFromBlobUri } from '../../blobstore/blob-uri.js'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { serveFiles } from '../helpers/http-files.js'
import { settleJob } from '../helpers/settle.js'
import { imageSpecs, targz } from './archive/archive-fixtures.js'

type Doc = Record<string, unknown> & { id: string, 'processing-state': string, 'processing-log': string }

const digits = imageSpecs({ 0: ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png', 'g.png', 'h.png', 'i.png', 'j.png'], 1: ['a.png', 'b.png', 'c.png', 'd.png', 'e.png'], 2: ['a.png', 'b.png', 'c.png', 'd.png'] })

describe('datafile and dataset jobs, end to end through the API with the in-process scheduler', () => {
  let t: TestApp
  let auth: string
  let files: Awaited<ReturnType<typeof serveFiles>>

  beforeAll(async () => {
    files = await serveFiles({
      '/digits.tar.gz': { body: targz(digits) },
      '/traversal.tar.gz': { body: targz([{ path: '../evil/x.png', body: 'x' }]) },
      '/symlink.tar.gz': { body: targz([...imageSpecs({ a: ['1.png', '2.png'] }), { path: 'a/link.png', type: 'SymbolicLink', linkpath: '/etc/passwd' }]) },
      '/not-image.tar.gz': { body: targz([...imageSpecs({ a: ['1.png'] }), { path: 'a/notes.txt', body: 'hello' }]) },
      '/empty.tar.gz': { body: targz([]) },
      '/page.html': { body: '<!DOCTYPE html><html><body>sign in</body></html>', type: 'text/html' },
      '/flaky.tar.gz': { body: 'unavailable', status: 503 }
    })
    t = await startTestApp({ logLevel: (process.env.ET_TEST_LOG ?? 'silent') as 'silent' }, { runJobs: true })
    auth = await signUp(t.app, 'pipe')
  })
  afterAll(async () => {
    await t.close()
    await files.close()
  })

  const post = async (url: string, payload: unknown): Promise<Doc> => {
    const res = await t.app.inject({ method: 'POST', url, headers: { authorization: auth }, payload: payload as Record<string, unknown> })
    expect(res.statusCode, res.body).toBe(201)
    return res.json()
  }

  const settle = async (path: string): Promise<Doc> => await settleJob(t.app, auth, path, 20_000)

  it('downloads a datafile, checks it, and splits it 70/30 per label into two archives', async () => {
    const datafile = await post('/datafiles', { url: files.url('/digits.tar.gz') })
    // Created at once, before the datafile is ready: the dataset waits for it.
    const dataset = await post('/datasets', { training: { 'datafile-id': datafile.id, 'split-percentage': 0.7 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.3 } })
    const readyFile = await settle(`/datafiles/${datafile.id}`)
    expect(readyFile).toMatchObject({ 'processing-state': 'finished_successfully', format: 'images-tar-gz', labels: ['0', '1', '2'], 'image-count': 19, attempts: 1, 'blob-url': `cbfs://${datafile.id}/datafile` })
    const ready = await settle(`/datasets/${dataset.id}`)
    expect(ready['processing-state'], ready['processing-log']).toBe('finished_successfully')
    expect(ready.labels).toEqual(['0', '1', '2'])
    const training = await inspectArchive(await t.deps.blobs.get(keyFromBlobUri(String((ready.training as Doc).url))))
    const test = await inspectArchive(await t.deps.blobs.get(keyFromBlobUri(String((ready.test as Doc).url))))
    if (training.format !== 'images-tar-gz' || test.format !== 'images-tar-gz') throw new Error('expected image archives')
    // Per label, in name order, a file goes to training while training's share so far is at
    // most 70%, and every label with two or more images has one on each side.
    expect(training.counts).toEqual({ 0: 7, 1: 3, 2: 3 })
    expect(test.counts).toEqual({ 0: 3, 1: 2, 2: 1 })
    expect(training.imageCount + test.imageCount).toBe(19)
    // Same datafile, same split: deterministic down to the file names.
    const again = await post('/datasets', { training: { 'datafile-id': datafile.id, 'split-percentage': 70 }, test: { 'datafile-id': datafile.id, 'split-percentage': 30 } })
    const second = await settle(`/datasets/${again.id}`)
    const training2 = await inspectArchive(await t.deps.blobs.get(keyFromBlobUri(String((second.training as Doc).url))))
    if (training2.format !== 'images-tar-gz') throw new Error('expected images')
    expect([...training2.files.entries()]).toEqual([...training.files.entries()])
  })

  it('takes an uploaded datafile (multipart, streamed to the blob store)', async () => {
    const boundary = '----et-upload'
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nmy digits\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="digits.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`),
      targz(digits),
      Buffer.from(`\r\n--${boundary}--\r\n`)
    ])
    const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json()).toMatchObject({ name: 'my digits', url: null, 'blob-url': `cbfs://${res.json().id as string}/datafile` })
    const done = await settle(`/datafiles/${res.json().id as string}`)
    expect(done).toMatchObject({ 'processing-state': 'finished_successfully', 'image-count': 19 })
  })

  it('an upload that fails validation leaves nothing behind', async () => {
    const boundary = '----et-upload'
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.tar.gz"\r\n\r\nxxxx\r\n--${boundary}\r\nContent-Disposition: form-data; name="url"\r\n\r\nhttps://example.com/also-a-url\r\n--${boundary}--\r\n`
    const before = (await t.deps.blobs.list('')).length
    const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body })
    expect(res.statusCode).toBe(400)
    expect(res.json().message).toMatch(/either 'url'/)
    expect((await t.deps.blobs.list('')).length).toBe(before)
  })

  const failures: Array<[string, string, RegExp]> = [
    ['a URL that answers 404', '/missing.tar.gz', /answered HTTP 404/],
    ['a tar with ../ entries', '/traversal.tar.gz', /\.\./],
    ['a symlink', '/symlink.tar.gz', /link/i],
    ['a file that is not an image', '/not-image.tar.gz', /notes\.txt/],
    ['an empty archive', '/empty.tar.gz', /empty/i],
    ['a web page instead of an archive', '/page.html', /HTML/]
  ]
  for (const [name, path, message] of failures) {
    it(`fails a datafile that is ${name}, saying why, after one attempt`, async () => {
      const datafile = await post('/datafiles', { url: files.url(path) })
      const done = await settle(`/datafiles/${datafile.id}`)
      expect(done['processing-state']).toBe('failed')
      expect(done['processing-log']).toMatch(message)
      expect(done.attempts).toBe(1)
    })
  }

  it('retries a datafile whose server answers 503, and records why', async () => {
    const datafile = await post('/datafiles', { url: files.url('/flaky.tar.gz') })
    const deadline = Date.now() + 10_000
    let doc: Doc
    do {
      doc = (await t.app.inject({ url: `/datafiles/${datafile.id}`, headers: { authorization: auth } })).json()
      await new Promise((resolve) => setTimeout(resolve, 50))
    } while (doc['retry-at'] === null && Date.now() < deadline)
    expect(doc).toMatchObject({ 'processing-state': 'pending', attempts: 1 })
    expect(doc['processing-log']).toMatch(/^attempt 1 failed: .*HTTP 503/)
    expect(Date.parse(String(doc['retry-at']))).toBeGreaterThan(Date.now())
  })

  it('fails a dataset whose datafile failed, naming it', async () => {
    const datafile = await post('/datafiles', { url: files.url('/empty.tar.gz') })
    const dataset = await post('/datasets', { training: { 'datafile-id': datafile.id, 'split-percentage': 0.8 }, test: { 'datafile-id': datafile.id, 'split-percentage': 0.2 } })
    const done = await settle(`/datasets/${dataset.id}`)
    expect(done['processing-state']).toBe('failed')
    expect(done['processing-log']).toMatch(new RegExp(`^datafile ${datafile.id} failed: .*empty`, 'i'))
  })
})

describe('private addresses', () => {
  it('refuses a datafile URL on 127.0.0.1 unless --allow-private-urls', async () => {
    const files = await serveFiles({ '/digits.tar.gz': { body: targz(digits) } })
    const t = await startTestApp({ jobs: { maxAttempts: 3, leaseMs: 60_000, allowPrivateUrls: false, caffeBin: null, gpu: null, workDir: '/tmp/et-test-work' } }, { runJobs: true })
    try {
      const auth = await signUp(t.app, 'priv')
      const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: files.url('/digits.tar.gz') } })
      const id: string = res.json().id
      const doc = await settleJob(t.app, auth, `/datafiles/${id}`, 20_000)
      expect(doc['processing-state']).toBe('failed')
      expect(doc['processing-log']).toMatch(/127\.0\.0\.1 is a private, loopback or link-local address.*--allow-private-urls/)
      expect(files.hits()['/digits.tar.gz']).toBeUndefined()
    } finally {
      await t.close()
      await files.close()
    }
  })
})

describe('size limit', () => {
  it('fails a download bigger than --max-upload-mb while it streams, whatever Content-Length says', async () => {
    const big = targz(imageSpecs({ a: Array.from({ length: 40 }, (_, i) => `${i}.png`) }))
    const files = await serveFiles({ '/big.tar.gz': { body: big } })
    const t = await startTestApp({ maxUploadBytes: 512 }, { runJobs: true })
    try {
      const auth = await signUp(t.app, 'limits')
      const res = await t.app.inject({ method: 'POST', url: '/datafiles', headers: { authorization: auth }, payload: { url: files.url('/big.tar.gz') } })
      const id: string = res.json().id
      const doc = await settleJob(t.app, auth, `/datafiles/${id}`, 20_000)
      expect(big.length).toBeGreaterThan(512)
      expect(doc['processing-state']).toBe('failed')
      expect(doc['processing-log']).toMatch(/is (larger than the limit|\d+ bytes, more than the limit) of 512 bytes/)
      expect(await t.deps.blobs.exists(`${id}/datafile`)).toBe(false)
    } finally {
      await t.close()
      await files.close()
    }
  })
})
