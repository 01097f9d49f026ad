import { pino } from 'pino'
import type { Logger, LoggerOptions } from 'pino'

export type { Logger }

/**
 * Paths pino blanks out wherever they appear in a log record: credentials must never reach
 * the logs, even when someone logs a whole request or config object by mistake.
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'password',
  '*.password',
  'admin.password',
  'config.admin.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'couchUrl',
  'body.password'
]

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid }
  }
}

export function createLogger (level: string): Logger {
  return pino(loggerOptions(level))
}
