import type { CaffeExit } from '../caffe-command.js'

/** A work-dir file that users know under another name, with their own line numbers. */
export interface KnownFile {
  /** How the user knows it: "the net prototxt", "the solver prototxt". */
  label: string
  /** Maps a line of the rewritten file to the line of the user's file, when known. */
  userLine?: (line: number) => number | undefined
}

export interface FailureContext {
  /** "training", "classification", "converting the training images". */
  what: string
  workDir: string
  /** Work-dir file name → what it is to the user. */
  files: Record<string, KnownFile>
  /** Other work-dir paths to show as something else (image files → their URL). */
  rename?: (path: string) => string | undefined
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Turns how Caffe ended into one sentence for the job's processing-log: Caffe's fatal line
 * with work-dir paths replaced by what the user knows (their prototxt files, with their own
 * line numbers), and the common failures in plain words.
 */
export function explainCaffeFailure (exit: CaffeExit, ctx: FailureContext): string {
  const how = exit.code === null ? `was killed by ${exit.signal ?? 'a signal'}` : `exited with code ${exit.code}`
  if (exit.fatal === undefined) {
    if (exit.code === null) return `${ctx.what} failed: Caffe ${how}${exit.signal === 'SIGKILL' ? ' (out of memory, or stopped by someone)' : ''}`
    // Informational glog lines say nothing about why it stopped; flag errors are plain lines.
    const last = [...exit.tail].reverse().find((line) => !/^I\d{4} /.test(line))
    return `${ctx.what} failed: Caffe ${how}${last === undefined ? ' without an error message' : `: ${clean(last, ctx)}`}`
  }
  let message = exit.fatal
  // Check failures are prefixed with the C++ condition, which means nothing to users.
  message = message.replace(/^Check failed: [^\n]*?\) (?=[A-Z])/, '')
  const unknownType = /layer type "([^"]+)" is not supported|Unknown layer type: (\S+)/.exec(message)
  const where = locate(message, ctx)
  if (unknownType !== null) {
    const type = unknownType[1] ?? unknownType[2] ?? ''
    return `${ctx.what} failed: the net prototxt refers to layer type '${type}', which is not supported${where.line === undefined ? '' : ` (line ${where.line})`}`
  }
  return `${ctx.what} failed: ${clean(message, ctx)}`
}

/** The first `<known file>:<line>` reference in a message, as the user's file and line. */
function locate (message: string, ctx: FailureContext): { label?: string, line?: number } {
  for (const [name, known] of Object.entries(ctx.files)) {
    const m = new RegExp(`(?:^|[\\s/'"(])${escape(name)}:(\\d+)`).exec(message)
    if (m !== null) return { label: known.label, line: known.userLine?.(Number(m[1])) ?? undefined }
  }
  return {}
}

function clean (text: string, ctx: FailureContext): string {
  let out = text.split(ctx.workDir + '/').join('')
  if (ctx.rename !== undefined) {
    out = out.replace(/[^\s'":,()]+/g, (token) => ctx.rename?.(token) ?? token)
  }
  for (const [name, known] of Object.entries(ctx.files)) {
    // `solver-net.prototxt:12:3:` → `the net prototxt (line 30):`
    out = out.replace(new RegExp(`(?<![\\w.-])${escape(name)}(?::(\\d+))?(?::\\d+)?(?=[:\\s,)]|$)`, 'g'), (_all, line: string | undefined) => {
      if (line === undefined) return known.label
      const userLine = known.userLine?.(Number(line))
      return userLine === undefined ? known.label : `${known.label} (line ${userLine})`
    })
  }
  return out
}

/**
 * Line mapping for a rewritten net: a line of the canonical text lies in the k-th top-level
 * layer block, and the user's file has the same layers in the same order.
 */
export function netLineMapper (rewrittenText: string, userLayerLines: ReadonlyArray<number | undefined>): (line: number) => number | undefined {
  const starts: number[] = []
  rewrittenText.split('\n').forEach((l, i) => { if (/^layers? \{/.test(l)) starts.push(i + 1) })
  return (line) => {
    let k = -1
    for (let i = 0; i < starts.length && (starts[i] ?? Infinity) <= line; i++) k = i
    return k < 0 ? undefined : userLayerLines[k]
  }
}
