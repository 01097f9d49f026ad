import type { BlobStore } from '../../blobstore/blob-store.js'
import { blobUri } from '../../blobstore/blob-uri.js'
import type { NewClassifier } from '../../models/classifier.js'
import type { ClassifyImage, NewClassifyJob } from '../../models/classify-job.js'
import type { ListQuery, TenantId } from '../../models/common.js'
import type { NewDatafile } from '../../models/datafile.js'
import type { NewDataset } from '../../models/dataset.js'
import type { DocumentOf, OwnedType } from '../../models/documents.js'
import { canTransition } from '../../models/processing-state.js'
import type { ProcessingState } from '../../models/processing-state.js'
import type { NewSolver } from '../../models/solver.js'
import type { NewTrainingJob } from '../../models/training-job.js'
import { initialNotifyFields } from '../../models/notify.js'
import { createHash } from 'node:crypto'
import { ConflictError } from '../lib/errors.js'
import { newDocId } from '../lib/ids.js'
import type { OwnedRepository, Page } from '../db/owned-repository.js'
import type { PrototxtIntake } from './prototxt-intake.js'

export type CancellableType = 'training-job' | 'classify-job' | 'datafile' | 'dataset'

/** Where a job was created from: the API's URL as the client reached it (webhook links use it). */
export interface JobOrigin {
  baseUrl?: string
}

/**
 * What the API does with resources, per tenant: creation with reference checks, reads,
 * listing, deletion guarded by dependents, and cancellation. Routes call only this.
 */
export class Resources {
  private readonly repo: OwnedRepository
  private readonly intake: PrototxtIntake
  private readonly blobs: BlobStore
  private readonly checkNotifyUrl: (url: string) => Promise<void>

  /** `checkNotifyUrl` refuses a webhook URL with a ValidationError (a private address). */
  constructor (deps: { repo: OwnedRepository, intake: PrototxtIntake, blobs: BlobStore, checkNotifyUrl?: (url: string) => Promise<void> }) {
    this.repo = deps.repo
    this.intake = deps.intake
    this.blobs = deps.blobs
    this.checkNotifyUrl = deps.checkNotifyUrl ?? (async () => {})
  }

  async get<T extends OwnedType> (tenant: TenantId, type: T, id: string): Promise<DocumentOf<T>> {
    return await this.repo.get(tenant, type, id)
  }

  async list<T extends OwnedType> (tenant: TenantId, type: T, query: ListQuery): Promise<Page<DocumentOf<T>>> {
    return await this.repo.list(tenant, type, query)
  }

  /** A datafile to download from its URL, or one already uploaded (the worker then only checks it). */
  async createDatafile (tenant: TenantId, input: NewDatafile): Promise<DocumentOf<'datafile'>> {
    const upload = input.file
    const fields = {
      ...pendingJob(),
      url: input.url ?? null,
      name: input.name ?? (upload === undefined ? lastPathSegment(input.url ?? '') : upload.filename.slice(0, 200) || null),
      'blob-url': upload === undefined ? null : blobUri(upload.key),
      format: null,
      size: upload?.size ?? null,
      labels: null,
      'image-count': null
    }
    // An upload was stored under the id reserved for this document; otherwise a new id.
    return await this.repo.create(tenant, 'datafile', fields, upload?.docId)
  }

  async createDataset (tenant: TenantId, input: NewDataset): Promise<DocumentOf<'dataset'>> {
    await this.repo.assertReferences(tenant, 'dataset', input)
    return await this.repo.create(tenant, 'dataset', {
      ...pendingJob(),
      training: { ...input.training, url: null },
      test: { ...input.test, url: null },
      labels: null
    })
  }

  async createSolver (tenant: TenantId, input: NewSolver): Promise<DocumentOf<'solver'>> {
    await this.repo.assertReferences(tenant, 'solver', input)
    const solver = await this.intake.read('specification-url', 'solver', { url: input['specification-url'], text: input.specification }, 'solver.prototxt')
    const net = await this.intake.read('specification-net-url', 'net', { url: input['specification-net-url'], text: input['specification-net'] }, 'solver-net.prototxt')
    // The id is chosen before the write so the files can be stored under it first: a crash in
    // between leaves orphan blobs, never a document pointing at missing files.
    const id = newDocId()
    const specUrl = await this.intake.store(`${id}/solver.prototxt`, solver.text)
    const netUrl = await this.intake.store(`${id}/solver-net.prototxt`, net.text)
    return await this.repo.create(tenant, 'solver', {
      'dataset-id': input['dataset-id'],
      'specification-url': specUrl,
      'specification-net-url': netUrl,
      'source-specification-url': input['specification-url'] ?? null,
      'source-specification-net-url': input['specification-net-url'] ?? null,
      'data-layer-type': net.summary.dataLayerType ?? null,
      'max-iter': solver.summary.maxIter ?? null
    }, id)
  }

  async createTrainingJob (tenant: TenantId, input: NewTrainingJob, origin: JobOrigin = {}): Promise<DocumentOf<'training-job'>> {
    await this.repo.assertReferences(tenant, 'training-job', input)
    if (input['notify-url'] !== undefined) await this.checkNotifyUrl(input['notify-url'])
    return await this.repo.create(tenant, 'training-job', {
      ...pendingJob(),
      'solver-id': input['solver-id'],
      'std-out-url': null,
      'std-err-url': null,
      'trained-model-url': null,
      labels: null,
      progress: null,
      snapshots: [],
      'notify-url': input['notify-url'] ?? null,
      ...initialNotifyFields(input['notify-url'] ?? null, origin.baseUrl ?? null)
    })
  }

  async createClassifier (tenant: TenantId, input: NewClassifier): Promise<DocumentOf<'classifier'>> {
    await this.repo.assertReferences(tenant, 'classifier', input)
    const deploy = await this.intake.read('specification-url', 'deploy', { url: input['specification-url'], text: input.specification }, 'classifier.prototxt')
    const id = newDocId()
    const specUrl = await this.intake.store(`${id}/classifier.prototxt`, deploy.text)
    return await this.repo.create(tenant, 'classifier', {
      'training-job-id': input['training-job-id'],
      'specification-url': specUrl,
      'source-specification-url': input['specification-url'] ?? null,
      scale: input.scale,
      'image-width': input['image-width'],
      'image-height': input['image-height'],
      color: input.color,
      gpu: input.gpu
    }, id)
  }

  async createClassifyJob (tenant: TenantId, classifierId: string, input: NewClassifyJob, origin: JobOrigin = {}): Promise<DocumentOf<'classify-job'>> {
    await this.repo.get(tenant, 'classifier', classifierId)
    if (input['notify-url'] !== undefined) await this.checkNotifyUrl(input['notify-url'])
    const images: ClassifyImage[] = []
    const seen = new Set<string>()
    for (const url of input.urls) {
      // The original keyed images by sha1(url); keep that so its clients find their results.
      const key = createHash('sha1').update(url).digest('hex')
      if (seen.has(key)) continue
      seen.add(key)
      images.push({ key, url, filename: null, 'blob-url': null })
    }
    for (const file of input.files) {
      // Uploads are keyed by file name, made unique within the request.
      const base = file.filename === '' ? 'image' : file.filename
      let key = base
      for (let n = 2; seen.has(key); n++) key = `${base}#${n}`
      seen.add(key)
      images.push({ key, url: null, filename: file.filename, 'blob-url': blobUri(file.key) })
    }
    // Uploaded images were stored under the id reserved for this request's document.
    const id = input.files[0]?.docId
    const fields = {
      ...pendingJob(),
      'classifier-id': classifierId,
      images,
      results: Object.fromEntries(images.map((image) => [image.key, 'pending'])),
      predictions: {},
      'std-out-url': null,
      'std-err-url': null,
      'notify-url': input['notify-url'] ?? null,
      ...initialNotifyFields(input['notify-url'] ?? null, origin.baseUrl ?? null)
    }
    return await this.repo.create(tenant, 'classify-job', fields, id)
  }

  /**
   * Deletes a document and its stored files. A job still being processed must be cancelled
   * first; a document other documents depend on is refused with 409.
   */
  async delete (tenant: TenantId, type: OwnedType, id: string): Promise<void> {
    await this.repo.delete(tenant, type, id, (doc) => {
      const state: unknown = Reflect.get(doc, 'processing-state')
      if (state === 'processing') throw new ConflictError(`${type} ${id} is being processed; cancel it first`)
    })
    await this.blobs.deletePrefix(`${id}/`)
  }

  /**
   * Cancels a job that has not ended: pending jobs are never started, and a running job's
   * worker sees the state change at its next lease renewal and stops the process.
   */
  async cancel<T extends CancellableType> (tenant: TenantId, type: T, id: string): Promise<DocumentOf<T>> {
    return await this.repo.update(tenant, type, id, (doc) => {
      const state = (doc as { 'processing-state': ProcessingState })['processing-state']
      if (state === 'cancelled') return null
      if (!canTransition(state, 'cancelled')) throw new ConflictError(`${type} ${id} has already ended (${state}); there is nothing to cancel`)
      return { ...doc, 'processing-state': 'cancelled', 'processing-log': 'cancelled by the user', 'finished-at': new Date().toISOString(), 'lease-expires-at': null }
    })
  }
}

function pendingJob (): { 'processing-state': 'pending', 'processing-log': string, attempts: number, 'worker-id': null, 'lease-expires-at': null, 'started-at': null, 'finished-at': null, 'retry-at': null } {
  return { 'processing-state': 'pending', 'processing-log': '', attempts: 0, 'worker-id': null, 'lease-expires-at': null, 'started-at': null, 'finished-at': null, 'retry-at': null }
}

function lastPathSegment (url: string): string | null {
  try {
    const segment = new URL(url).pathname.split('/').filter((s) => s !== '').pop()
    return segment === undefined ? null : decodeURIComponent(segment).slice(0, 200)
  } catch {
    return null
  }
}
