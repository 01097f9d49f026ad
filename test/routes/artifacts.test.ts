import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { validatorCompiler } from 'fastify-type-provider-zod'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { artifactRoutes } from '../../routes/artifacts.js'
import { OwnedRepository } from '../../src/db/owned-repository.js'
import { logChunkKey } from '../../src/jobs/job-logs.js'
import auth from '../../src/plugins/auth.js'
import depsPlugin from '../../src/plugins/deps.js'
import errorHandler from '../../src/plugins/error-handler.js'
import { fastSerializerCompiler } from '../../src/plugins/serializer.js'
import { Artifacts } from '../../src/services/artifacts.js'
import { signUp, startTestApp } from '../helpers/app.js'
import type { TestApp } from '../helpers/app.js'
import { createChain } from '../helpers/resources.js'

let t: TestApp
let app: FastifyInstance
let alice = ''
let bob = ''

/**
 * The artifact routes over the real services, registered as app.ts registers resource routes
 * (auth hook in an encapsulated scope), on the test app's database and blob store.
 */
async function artifactsApp (): Promise<FastifyInstance> {
  const a = Fastify({ logger: false })
  a.setValidatorCompiler(validatorCompiler)
  a.setSerializerCompiler(fastSerializerCompiler)
  await a.register(errorHandler)
  await a.register(depsPlugin, { ...t.deps.services, artifacts: new Artifacts({ repo: new OwnedRepository(t.deps.documents), blobs: t.deps.blobs, pollMs: 50 }) })
  await a.register(async (authed) => {
    await authed.register(auth)
    await authed.register(artifactRoutes)
  })
  await a.ready()
  return a
}

async function patch (id: string, fields: Record<string, unknown>): Promise<void> {
  const raw = await t.deps.documents.read(id) as Record<string, unknown> & { _id: string }
  await t.deps.documents.write({ ...raw, ...fields })
}

const CHUNKS = ['I1121 first chunk\n', 'I1121 second, from attempt one\n', 'I1121 attempt two begins\n']
const MODEL = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff))
let finished = ''
let classifyJob = ''
let pendingJob = ''

beforeAll(async () => {
  t = await startTestApp()
  app = await artifactsApp()
  alice = await signUp(t.app, 'alice')
  bob = await signUp(t.app, 'bob')
  const chain = await createChain(t.app, alice)
  finished = chain.trainingJob
  classifyJob = chain.classifyJob
  pendingJob = (await createChain(t.app, alice)).trainingJob
  const blobs = t.deps.blobs
  await blobs.put(logChunkKey(finished, 'stderr', 1, 1), CHUNKS[0] ?? '')
  await blobs.put(logChunkKey(finished, 'stderr', 1, 2), CHUNKS[1] ?? '')
  await blobs.put(logChunkKey(finished, 'stderr', 2, 1), CHUNKS[2] ?? '')
  await blobs.put(`${finished}/stderr`, CHUNKS.join(''))
  await blobs.put(`${finished}/stdout`, 'only a whole stdout\n')
  await blobs.put(`${finished}/trained.caffemodel`, MODEL)
  await blobs.put(`${finished}/snapshots/snapshot_iter_10.caffemodel`, MODEL.subarray(0, 100))
  await blobs.put(`${finished}/snapshots/snapshot_iter_10.solverstate`, 'state bytes')
  await patch(finished, {
    'processing-state': 'finished_successfully',
    'trained-model-url': `cbfs://${finished}/trained.caffemodel`,
    'std-err-url': `cbfs://${finished}/stderr`,
    'std-out-url': `cbfs://${finished}/stdout`,
    snapshots: [{ iteration: 10, 'model-url': `cbfs://${finished}/snapshots/snapshot_iter_10.caffemodel`, 'state-url': `cbfs://${finished}/snapshots/snapshot_iter_10.solverstate` }]
  })
  await blobs.put(`${classifyJob}/stderr`, 'classify log\n')
})
afterAll(async () => {
  await app.close()
  await t.close()
})

const get = async (url: string, who = alice) => await app.inject({ url, headers: { authorization: who } })

describe('artifact routes', () => {
  it('serves a training log as text, from the chunks, from any byte offset', async () => {
    const res = await get(`/training-jobs/${finished}/logs`)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.body).toBe(CHUNKS.join(''))
    // An offset inside the second chunk, as a client continuing a previous read would send.
    const from = (CHUNKS[0] ?? '').length + 5
    expect((await get(`/training-jobs/${finished}/logs?from=${from}`)).body).toBe(CHUNKS.join('').slice(from))
    expect((await get(`/training-jobs/${finished}/logs?from=100000`)).body).toBe('')
    // Follow on a job that has ended sends what there is and ends.
    expect((await get(`/training-jobs/${finished}/logs?follow=true`)).body).toBe(CHUNKS.join(''))
  })

  it('falls back to the whole file when there are no chunks (stdout here, classify jobs)', async () => {
    expect((await get(`/training-jobs/${finished}/logs?stream=stdout`)).body).toBe('only a whole stdout\n')
    expect((await get(`/training-jobs/${finished}/logs?stream=stdout&from=5`)).body).toBe('a whole stdout\n')
    const res = await get(`/classify-jobs/${classifyJob}/logs`)
    expect(res.statusCode).toBe(200)
    expect(res.body).toBe('classify log\n')
    // Nothing stored yet: an empty log, not an error.
    const empty = await get(`/training-jobs/${pendingJob}/logs`)
    expect(empty.statusCode).toBe(200)
    expect(empty.body).toBe('')
  })

  it('downloads the trained model and each snapshot with a file name', async () => {
    const res = await get(`/training-jobs/${finished}/model`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/octet-stream')
    expect(res.headers['content-disposition']).toBe(`attachment; filename="${finished}.caffemodel"`)
    expect(res.headers['content-length']).toBe(String(MODEL.length))
    expect(res.rawPayload.equals(MODEL)).toBe(true)
    const snap = await get(`/training-jobs/${finished}/snapshots/snapshot_iter_10.solverstate`)
    expect(snap.statusCode).toBe(200)
    expect(snap.body).toBe('state bytes')
    expect(snap.headers['content-disposition']).toBe(`attachment; filename="${finished}-snapshot_iter_10.solverstate"`)
    expect((await get(`/training-jobs/${finished}/snapshots/snapshot_iter_10.caffemodel`)).rawPayload.equals(MODEL.subarray(0, 100))).toBe(true)
  })

  it('404s for what does not exist: no model yet, a snapshot not listed, a missing job', async () => {
    const noModel = await get(`/training-jobs/${pendingJob}/model`)
    expect(noModel.statusCode).toBe(404)
    expect(noModel.json()).toMatchObject({ code: 'ET_NOT_FOUND', message: `training job ${pendingJob} has no trained model (it is pending)` })
    expect((await get(`/training-jobs/${finished}/snapshots/snapshot_iter_20.caffemodel`)).statusCode).toBe(404)
    expect((await get(`/training-jobs/${finished}/snapshots/..%2F..%2Fetc`)).statusCode).toBe(400)
    expect((await get('/training-jobs/nosuchjob/logs')).statusCode).toBe(404)
    expect((await get('/training-jobs/nosuchjob/model')).statusCode).toBe(404)
  })

  it('another user sees 404 for every artifact, like a missing job', async () => {
    for (const url of [`/training-jobs/${finished}/logs`, `/training-jobs/${finished}/model`, `/training-jobs/${finished}/snapshots/snapshot_iter_10.caffemodel`, `/classify-jobs/${classifyJob}/logs`]) {
      const res = await get(url, bob)
      expect(res.statusCode, url).toBe(404)
      expect(res.body).not.toContain('state bytes')
    }
    expect((await app.inject({ url: `/training-jobs/${finished}/logs` })).statusCode).toBe(401)
  })

  it('rejects bad query parameters', async () => {
    expect((await get(`/training-jobs/${finished}/logs?stream=both`)).statusCode).toBe(400)
    expect((await get(`/training-jobs/${finished}/logs?from=-1`)).statusCode).toBe(400)
    expect((await get(`/training-jobs/${finished}/logs?follow=maybe`)).statusCode).toBe(400)
  })

  it('follow streams new chunks while the job runs and ends when it ends', async () => {
    const running = (await createChain(t.app, alice)).trainingJob
    await patch(running, { 'processing-state': 'processing', 'worker-id': 'w1' })
    await t.deps.blobs.put(logChunkKey(running, 'stderr', 1, 1), 'line one\n')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const res = await request(`http://127.0.0.1:${port}/training-jobs/${running}/logs?follow=true`, { headers: { authorization: alice } })
    expect(res.statusCode).toBe(200)
    const received: string[] = []
    let ended = false
    const reading = (async () => {
      for await (const chunk of res.body) received.push(Buffer.from(chunk as Uint8Array).toString('utf8'))
      ended = true
    })()
    const waitFor = async (what: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !what(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await waitFor(() => received.join('') === 'line one\n')
    expect(received.join('')).toBe('line one\n')
    await t.deps.blobs.put(logChunkKey(running, 'stderr', 1, 2), 'line two\n')
    await waitFor(() => received.join('').includes('line two'))
    expect(received.join('')).toBe('line one\nline two\n')
    expect(ended).toBe(false)
    // As a runner finishes: the last chunk first, then the final state.
    await t.deps.blobs.put(logChunkKey(running, 'stderr', 1, 3), 'last line\n')
    await patch(running, { 'processing-state': 'finished_successfully' })
    await reading
    expect(ended).toBe(true)
    expect(received.join('')).toBe('line one\nline two\nlast line\n')
  })
})
