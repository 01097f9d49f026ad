import type { JobRunners } from '../job-runner.js'
import { createDatafileRunner } from './datafile-runner.js'
import type { DatafileRunnerDeps } from './datafile-runner.js'
import { createDatasetRunner } from './dataset-runner.js'
import { PermanentJobError } from '../../lib/errors.js'

export interface RunnerDeps extends DatafileRunnerDeps {
  caffeBin: string | null
  gpu: string | null
}

/** One runner per job type. */
export function createRunners (deps: RunnerDeps): JobRunners {
  return {
    datafile: createDatafileRunner(deps),
    dataset: createDatasetRunner(),
    // TODO(#3): the training and classify runners land next; until then such jobs fail clearly.
    'training-job': { type: 'training-job', run: async () => { throw new PermanentJobError('training is not available in this build yet') } },
    'classify-job': { type: 'classify-job', run: async () => { throw new PermanentJobError('classification is not available in this build yet') } }
  }
}
