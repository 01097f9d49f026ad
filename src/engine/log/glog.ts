/** glog severities as the letter that starts each line. */
export type GlogSeverity = 'I' | 'W' | 'E' | 'F'

/** Everything one glog line carries. `where` is the source tag, e.g. `solver.cpp:218`. */
export interface GlogLine {
  readonly severity: GlogSeverity
  readonly date: Date
  /** Microseconds within the second, 0–999999. */
  readonly micros: number
  readonly threadId: number
  readonly where: string
  readonly message: string
}

const two = (n: number): string => String(n).padStart(2, '0')

/**
 * Formats one line as glog does: `I1121 01:52:33.123456 12345 solver.cpp:218] message`, local
 * time, the thread id right-aligned to five columns. Multi-line messages (the solver and net
 * dumps) are written as they are, exactly like glog.
 */
export function formatGlogLine (l: GlogLine): string {
  const d = l.date
  const stamp = `${two(d.getMonth() + 1)}${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(l.micros).padStart(6, '0')}`
  return `${l.severity}${stamp} ${String(l.threadId).padStart(5)} ${l.where}] ${l.message}`
}

/** Writes glog lines to a sink; the method shape matches the engine's EngineLog. */
export interface GlogWriter {
  info (where: string, message: string): void
  warning (where: string, message: string): void
  error (where: string, message: string): void
  fatal (where: string, message: string): void
}

/** Options for createGlogWriter; both exist so tests can make the output deterministic. */
export interface GlogWriterOptions {
  readonly threadId?: number
  /** Milliseconds since the epoch, with a fractional part for microseconds. */
  readonly now?: () => number
}

/** A glog writer over any text sink (process.stderr.write, a log file, an array in tests). */
export function createGlogWriter (write: (text: string) => void, options?: GlogWriterOptions): GlogWriter {
  const threadId = options?.threadId ?? process.pid
  const now = options?.now ?? (() => performance.timeOrigin + performance.now())
  const emit = (severity: GlogSeverity, where: string, message: string): void => {
    const t = now()
    const ms = Math.floor(t)
    const micros = Math.min(999999, (ms % 1000) * 1000 + Math.floor((t - ms) * 1000))
    write(`${formatGlogLine({ severity, date: new Date(ms), micros, threadId, where, message })}\n`)
  }
  return {
    info: (where, message) => emit('I', where, message),
    warning: (where, message) => emit('W', where, message),
    error: (where, message) => emit('E', where, message),
    fatal: (where, message) => emit('F', where, message)
  }
}
