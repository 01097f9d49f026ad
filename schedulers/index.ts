import { assertNever } from '../src/lib/assert-never.js'
import { InProcessScheduler } from './in-process-scheduler.js'
import { NsqScheduler } from './nsq-scheduler.js'
import type { SchedulerConfig } from './scheduler-config.js'
import type { Scheduler, SchedulerLogger } from './scheduler.js'

export type { Consumer, ConsumerOptions, CloseOptions, Delivery, JobHandler, JobOutcome, Scheduler, SchedulerKind, SchedulerLogger } from './scheduler.js'
export { SchedulerClosedError } from './scheduler.js'
export { SchedulerConfig } from './scheduler-config.js'
export type { SchedulerConfigInput } from './scheduler-config.js'

/** Builds the scheduler a parsed config asks for; the caller closes it. */
export function createScheduler (config: SchedulerConfig, logger?: SchedulerLogger): Scheduler {
  switch (config.kind) {
    case 'in-process':
      return new InProcessScheduler(config, logger)
    case 'nsq':
      return new NsqScheduler(config, logger)
    default:
      return assertNever(config, 'unknown scheduler kind')
  }
}
