/** A failure `et` reports in one line and exits with `exitCode` (1: failed, 2: usage, 130: interrupted). */
export class CliError extends Error {
  readonly exitCode: number
  constructor (message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/** The command line itself is wrong: exit code 2, with a pointer to the command's help. */
export class UsageError extends CliError {
  readonly command: string | undefined
  constructor (message: string, command?: string) {
    super(message, 2)
    this.name = 'UsageError'
    this.command = command
  }
}

/** No answer from the server at all: refused, reset, timed out or not found. */
export class UnreachableError extends CliError {
  constructor (message: string) {
    super(message, 1)
    this.name = 'UnreachableError'
  }
}

/** The server answered with its `{statusCode, code, error, message}` error shape (or something else that is not 2xx). */
export class ApiError extends CliError {
  readonly status: number
  readonly code: string
  constructor (status: number, code: string, message: string) {
    super(message, 1)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

/** The user pressed Ctrl-C: exit 130, as shells do for SIGINT. */
export class InterruptedError extends CliError {
  constructor (message = 'interrupted') {
    super(message, 130)
    this.name = 'InterruptedError'
  }
}
