import { randomUUID } from 'node:crypto'
import type { JobType } from '../../models/common.js'
import { storedSchemas } from '../../models/documents.js'
import type { ProcessingState } from '../../models/processing-state.js'
import type { CouchDatabase } from '../../src/db/couch.js'

const typeFields: Record<JobType, Record<string, unknown>> = {
  datafile: { url: 'https://example.com/data.tar.gz' },
  dataset: { training: { 'datafile-id': 'df1', 'split-percentage': 0.7 }, test: { 'datafile-id': 'df1', 'split-percentage': 0.3 } },
  'training-job': { 'solver-id': 'solver1' },
  'classify-job': { 'classifier-id': 'classifier1', images: [], results: {} }
}

/**
 * Writes a valid job document of `type` in `state` straight into the database, as workers and
 * the API would have left it (a processing job has a worker and a lease). Returns its id.
 */
export async function writeJob (couch: CouchDatabase, type: JobType, state: ProcessingState, fields: Record<string, unknown> = {}): Promise<string> {
  const now = Date.now()
  const id = randomUUID().replaceAll('-', '')
  const ran = state !== 'pending'
  const doc = {
    _id: id,
    type,
    'user-id': 'user:alice',
    'created-at': new Date(now - 60_000).toISOString(),
    'updated-at': new Date(now).toISOString(),
    ...typeFields[type],
    'processing-state': state,
    'processing-log': '',
    attempts: ran ? 1 : 0,
    'worker-id': state === 'processing' ? 'worker@test:1:aaaaaa' : null,
    'lease-expires-at': state === 'processing' ? new Date(now + 60_000).toISOString() : null,
    'started-at': ran ? new Date(now - 30_000).toISOString() : null,
    'finished-at': ran && state !== 'processing' ? new Date(now).toISOString() : null,
    ...fields
  }
  // Fails the test early if the fixture drifts from the schemas the readers parse with.
  storedSchemas[type].parse(doc)
  await couch.put(doc)
  return id
}
