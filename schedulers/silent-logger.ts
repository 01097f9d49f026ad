import type { SchedulerLogger } from './scheduler.js'

const noop = (): void => {}

/** Logger used when the caller gives none: drops everything. */
export const silentLogger: SchedulerLogger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger
}
