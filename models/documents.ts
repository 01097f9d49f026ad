import type { z } from 'zod'
import { Classifier } from './classifier.js'
import { ClassifyJob } from './classify-job.js'
import type { DocumentType, JobType } from './common.js'
import { Datafile } from './datafile.js'
import { Dataset } from './dataset.js'
import { Solver } from './solver.js'
import { TrainingJob } from './training-job.js'
import { User } from './user.js'

/** The stored schema of each document type. Reads from the database are parsed with these. */
export const documentSchemas = {
  user: User,
  datafile: Datafile,
  dataset: Dataset,
  solver: Solver,
  'training-job': TrainingJob,
  classifier: Classifier,
  'classify-job': ClassifyJob
} as const

export type DocumentOf<T extends DocumentType> = z.infer<(typeof documentSchemas)[T]>

/**
 * The stored schemas in "loose" mode, for reading from the database: fields this version does
 * not know are kept, so a read–modify–write never drops what a newer version added. Built
 * once: zod compiles each schema on first use, which must not happen per request.
 */
export const storedSchemas = {
  user: User.loose(),
  datafile: Datafile.loose(),
  dataset: Dataset.loose(),
  solver: Solver.loose(),
  'training-job': TrainingJob.loose(),
  classifier: Classifier.loose(),
  'classify-job': ClassifyJob.loose()
} as const
export type OwnedType = Exclude<DocumentType, 'user'>
export type OwnedDocument = DocumentOf<OwnedType>
export type JobDocument = DocumentOf<JobType>

/**
 * Which fields of a document point at which other documents. One table drives reference
 * validation on create, the 409 on deleting something still in use, and the database view
 * that finds dependents.
 */
export const referenceFields: Record<OwnedType, ReadonlyArray<{ path: readonly string[], target: OwnedType }>> = {
  datafile: [],
  dataset: [{ path: ['training', 'datafile-id'], target: 'datafile' }, { path: ['test', 'datafile-id'], target: 'datafile' }],
  solver: [{ path: ['dataset-id'], target: 'dataset' }],
  'training-job': [{ path: ['solver-id'], target: 'solver' }],
  classifier: [{ path: ['training-job-id'], target: 'training-job' }],
  'classify-job': [{ path: ['classifier-id'], target: 'classifier' }]
}

/** The ids a document refers to, with the type each must have. */
export function referencesOf (type: OwnedType, doc: unknown): Array<{ id: string, target: OwnedType }> {
  const refs: Array<{ id: string, target: OwnedType }> = []
  for (const { path, target } of referenceFields[type]) {
    let value: unknown = doc
    for (const key of path) value = typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined
    if (typeof value === 'string') refs.push({ id: value, target })
  }
  return refs
}

export const jobTypes: readonly JobType[] = ['datafile', 'dataset', 'training-job', 'classify-job']

export function isJobType (type: string): type is JobType {
  return (jobTypes as readonly string[]).includes(type)
}
