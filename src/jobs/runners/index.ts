import { availableParallelism } from 'node:os'
import { createCaffeCommand } from '../caffe-command.js'
import type { JobRunners } from '../job-runner.js'
import { createClassifyRunner } from './classify-runner.js'
import { createDatafileRunner } from './datafile-runner.js'
import type { DatafileRunnerDeps } from './datafile-runner.js'
import { createDatasetRunner } from './dataset-runner.js'
import { createTrainingRunner } from './training-runner.js'

export interface RunnerDeps extends DatafileRunnerDeps {
  /** A real `caffe` binary for training, or null for the builtin engine. */
  caffeBin: string | null
  /** `--gpu` for a real Caffe. */
  gpu: string | null
  /** Jobs this process runs at once: the engine's threads are shared out between them. */
  concurrency: number
}

/** One runner per job type, sharing one way of running Caffe. */
export function createRunners (deps: RunnerDeps): JobRunners {
  const caffe = createCaffeCommand({
    caffeBin: deps.caffeBin,
    gpu: deps.gpu,
    // Two jobs each spinning up every core would only fight over them.
    threads: Math.max(1, Math.floor(availableParallelism() / Math.max(1, deps.concurrency)))
  })
  return {
    datafile: createDatafileRunner(deps),
    dataset: createDatasetRunner(),
    'training-job': createTrainingRunner({ caffe, gpu: deps.gpu !== null }),
    'classify-job': createClassifyRunner({ caffe, fetcher: deps.fetcher, allowPrivateUrls: deps.allowPrivateUrls })
  }
}
