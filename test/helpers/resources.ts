import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/caffe-prototxt/${name}`, import.meta.url), 'utf8')

export const lenetSolver = fixture('lenet_solver.prototxt')
export const lenetNet = fixture('lenet_train_test.prototxt')
export const lenetDeploy = fixture('lenet.prototxt')

export interface Chain {
  datafile: string
  dataset: string
  solver: string
  trainingJob: string
  classifier: string
  classifyJob: string
}

async function post (app: FastifyInstance, auth: string, url: string, payload: unknown): Promise<string> {
  const res = await app.inject({ method: 'POST', url, headers: { authorization: auth }, payload: payload as Record<string, unknown> })
  if (res.statusCode !== 201) throw new Error(`POST ${url} failed: ${res.statusCode} ${res.body}`)
  const id: unknown = res.json().id
  if (typeof id !== 'string') throw new Error(`POST ${url} returned no id: ${res.body}`)
  return id
}

/** One of every resource, each referring to the previous, created through the API. */
export async function createChain (app: FastifyInstance, auth: string): Promise<Chain> {
  const datafile = await post(app, auth, '/datafiles', { url: 'https://example.com/data/mnist.tar.gz' })
  const dataset = await post(app, auth, '/datasets', { training: { 'datafile-id': datafile, 'split-percentage': 0.7 }, test: { 'datafile-id': datafile, 'split-percentage': 0.3 } })
  const solver = await post(app, auth, '/solvers', { 'dataset-id': dataset, specification: lenetSolver, 'specification-net': lenetNet })
  const trainingJob = await post(app, auth, '/training-jobs', { 'solver-id': solver })
  const classifier = await post(app, auth, '/classifiers', { 'training-job-id': trainingJob, specification: lenetDeploy, scale: '255', 'image-width': '28', 'image-height': '28', color: false, gpu: false })
  const classifyJob = await post(app, auth, `/classifiers/${classifier}/classify`, { urls: ['https://example.com/img/7.png'] })
  return { datafile, dataset, solver, trainingJob, classifier, classifyJob }
}
