import { PermanentJobError } from '../../lib/errors.js'

/** Why an archive was refused; stable strings a runner or a test can branch on. */
export type ArchiveProblem =
  | 'empty'
  | 'not-an-archive'
  | 'not-a-tar'
  | 'truncated'
  | 'corrupt'
  | 'unsafe-path'
  | 'link'
  | 'special-file'
  | 'unsupported-entry'
  | 'bad-name'
  | 'too-deep'
  | 'top-level-file'
  | 'not-an-image'
  | 'empty-label'
  | 'duplicate'
  | 'layout'
  | 'too-many-entries'
  | 'too-large'
  | 'file-too-large'
  | 'compression-ratio'
  | 'changed'
  | 'label-mismatch'

/**
 * A datafile that no retry can fix: the message is written for the person who uploaded it
 * (it ends up in the job's `processing-log`), `problem` is for code. Errors of the input
 * stream itself (a reset download) are never wrapped in this class, so they stay retryable.
 */
export class ArchiveError extends PermanentJobError {
  readonly code = 'ET_BAD_ARCHIVE'
  readonly problem: ArchiveProblem

  constructor (problem: ArchiveProblem, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ArchiveError'
    this.problem = problem
  }
}
