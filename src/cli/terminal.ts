import { createInterface } from 'node:readline'
import type { Interface } from 'node:readline'
import { InterruptedError } from './cli-error.js'

/** The process streams `et` talks through; tests and the bin pass the real ones. */
export interface CliIo {
  stdin: NodeJS.ReadStream
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  env: NodeJS.ProcessEnv
}

/**
 * Output and questions: results on stdout, everything else (status, progress, questions) on
 * stderr, so `--json` output and `$(et …)` captures stay clean. On a terminal the status line
 * redraws in place; elsewhere (a pipe, a CI log) it is printed as lines, at most one a second.
 */
export class Terminal {
  readonly io: CliIo
  private statusShown = false
  private lastStatus = ''
  private lastStatusAt = 0
  private lines: LineReader | undefined

  constructor (io: CliIo) {
    this.io = io
  }

  get interactive (): boolean {
    return this.io.stderr.isTTY
  }

  /** Writes to stdout as is. */
  out (text: string): void {
    this.clearStatus()
    this.io.stdout.write(text)
  }

  /** One line of information on stderr. */
  note (line: string): void {
    this.clearStatus()
    this.io.stderr.write(`${line}\n`)
  }

  /** The current progress; `force` prints it even if a line was printed less than a second ago. */
  status (text: string, force = false): void {
    if (this.interactive) {
      const width = Math.max(20, (this.io.stderr.columns ?? 100) - 1)
      this.io.stderr.write(`\r\x1b[2K${text.length > width ? text.slice(0, width - 1) + '…' : text}`)
      this.statusShown = true
      return
    }
    const now = Date.now()
    if (text === this.lastStatus || (!force && now - this.lastStatusAt < 1000)) return
    this.lastStatus = text
    this.lastStatusAt = now
    this.io.stderr.write(`${text}\n`)
  }

  clearStatus (): void {
    if (!this.statusShown) return
    this.io.stderr.write('\r\x1b[2K')
    this.statusShown = false
  }

  /**
   * Asks a question on stderr and reads the answer: from the terminal (without echo when
   * `secret`), or, when stdin is not a terminal, as the next line of stdin, so scripts and tests
   * can answer by writing lines to it. Null when stdin ends without an answer.
   */
  async ask (question: string, options: { secret?: boolean } = {}): Promise<string | null> {
    this.clearStatus()
    this.io.stderr.write(question)
    const stdin = this.io.stdin
    if (!stdin.isTTY) {
      this.lines ??= new LineReader(stdin)
      return await this.lines.next()
    }
    if (options.secret === true) return await readHidden(stdin, this.io.stderr)
    return await readOneLine(stdin)
  }

  /** Lets the process exit: stops reading stdin. */
  close (): void {
    this.clearStatus()
    this.lines?.close()
  }
}

/** Lines of a non-terminal stdin, read as they are asked for. */
class LineReader {
  private readonly rl: Interface
  private readonly buffered: string[] = []
  private readonly waiting: Array<(line: string | null) => void> = []
  private ended = false

  constructor (input: NodeJS.ReadableStream) {
    this.rl = createInterface({ input, terminal: false })
    this.rl.on('line', (line) => {
      const waiter = this.waiting.shift()
      if (waiter !== undefined) waiter(line)
      else this.buffered.push(line)
    })
    this.rl.on('close', () => {
      this.ended = true
      for (const waiter of this.waiting.splice(0)) waiter(null)
    })
  }

  async next (): Promise<string | null> {
    const line = this.buffered.shift()
    if (line !== undefined) return line
    if (this.ended) return null
    return await new Promise((resolve) => this.waiting.push(resolve))
  }

  close (): void {
    this.rl.close()
  }
}

// A terminal in its usual (cooked) mode hands over whole lines and handles backspace itself.
async function readOneLine (stdin: NodeJS.ReadStream): Promise<string | null> {
  const rl = createInterface({ input: stdin, terminal: false })
  try {
    return await new Promise((resolve) => {
      rl.once('line', resolve)
      rl.once('close', () => { resolve(null) })
    })
  } finally {
    rl.close()
  }
}

// Raw mode: nothing is echoed; Enter ends, backspace edits, Ctrl-C aborts, Ctrl-D on an empty
// line means no answer.
async function readHidden (stdin: NodeJS.ReadStream, echoTo: NodeJS.WriteStream): Promise<string | null> {
  stdin.setRawMode(true)
  stdin.resume()
  stdin.setEncoding('utf8')
  let value = ''
  try {
    return await new Promise<string | null>((resolve, reject) => {
      const onData = (chunk: string): void => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') { finish(); resolve(value); return }
          if (ch === '\u0003') { finish(); reject(new InterruptedError()); return }
          if (ch === '\u0004' && value === '') { finish(); resolve(null); return }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
          else if (ch >= ' ') value += ch
        }
      }
      const finish = (): void => { stdin.off('data', onData) }
      stdin.on('data', onData)
    })
  } finally {
    stdin.setRawMode(false)
    stdin.pause()
    echoTo.write('\n')
  }
}

/**
 * Turns Ctrl-C (SIGINT) into something a command can wait for, instead of the default exit,
 * while it is installed. `next()` resolves at the next SIGINT, or at once for one that came
 * while nobody was waiting.
 */
export class InterruptWatcher {
  private current: { promise: Promise<void>, resolve: () => void } | undefined
  private missed = false
  private readonly handler = (): void => {
    if (this.current === undefined) {
      this.missed = true
      return
    }
    this.current.resolve()
    this.current = undefined
  }

  constructor () {
    process.on('SIGINT', this.handler)
  }

  async next (): Promise<void> {
    if (this.missed) {
      this.missed = false
      return
    }
    if (this.current === undefined) {
      let settle = (): void => {}
      const promise = new Promise<void>((resolve) => { settle = resolve })
      this.current = { promise, resolve: settle }
    }
    await this.current.promise
  }

  dispose (): void {
    process.off('SIGINT', this.handler)
  }
}
