/**
 * Where the net and solver write their Caffe-style log lines. `where` is the Caffe 1.0 source
 * tag (`net.cpp:84`), so our log reads like real Caffe's and one parser handles both. A fatal
 * line is not written here: fatal conditions are thrown as errors and printed by the CLI.
 */
export interface EngineLog {
  info (where: string, message: string): void
  warning (where: string, message: string): void
  error (where: string, message: string): void
}

/** A log that drops everything (library use, tests that do not look at the log). */
export const silentLog: EngineLog = {
  info () {},
  warning () {},
  error () {}
}

/** Keeps every line in memory as `I net.cpp:84] Creating Layer conv1`; for tests and tools. */
export class MemoryLog implements EngineLog {
  readonly lines: string[] = []
  info (where: string, message: string): void { this.lines.push(`I ${where}] ${message}`) }
  warning (where: string, message: string): void { this.lines.push(`W ${where}] ${message}`) }
  error (where: string, message: string): void { this.lines.push(`E ${where}] ${message}`) }
}
