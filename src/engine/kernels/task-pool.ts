import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import { SGEMM_SIGNATURE, setTaskSgemm, TASKS, WORKER_CONSTANTS, WORKER_FUNCTIONS, WORKER_LOOKUP, type NativeSgemm, type TaskArgs, type TaskName } from './tasks.js'

// Control words shared with each worker (Int32Array over a SharedArrayBuffer).
const REQUEST = 0
const READY = 1

// Below this many elements of work a task runs on the calling thread: waking a worker and
// waiting for it costs tens of microseconds.
const MIN_PARALLEL_WORK = 1 << 16
// Chunks per thread. Every thread, the calling one included, claims chunks one at a time until
// none is left, so the split follows whichever thread has a core: on a loaded machine a woken
// worker often starts only once the calling thread sleeps (measured), and with a fixed half
// each the caller then waited for the worker's whole half. Now it waits at most for the chunks
// a worker has already taken.
const CHUNKS_PER_THREAD = 8
const START_TIMEOUT_MS = 10_000
const TASK_TIMEOUT_MS = 120_000

interface WorkerSlot {
  readonly worker: Worker
  readonly port: MessagePort
  readonly ctrl: Int32Array
  generation: number
}

interface TaskMessage {
  task: TaskName
  /** Items [0, n) in `chunks` chunks, claimed through the pool's claim word. */
  n: number
  chunks: number
  /** This run's number: its low 16 bits tag the claim word, done[c] gets ±stamp. */
  stamp: number
  args: unknown[]
}

/**
 * The native BLAS of a pool's tasks: cblas_sgemm as bound on the calling thread, and what the
 * workers load at start to bind the same library (koffi's path and the library's file).
 */
export interface TaskNative {
  readonly sgemm: NativeSgemm
  readonly koffi: string
  readonly library: string
}

/** TaskPool construction options. */
export interface TaskPoolOptions {
  /** BLAS for the tasks to call as impl.sgemm on every thread (see tasks.ts); portable GEMM without. */
  readonly native?: TaskNative | undefined
  /** The calling thread only waits and every chunk of a parallel task runs in a worker (tests). */
  readonly workersOnly?: boolean | undefined
}

/**
 * Runs the TASKS data-parallel over the calling thread plus `threads − 1` worker threads that
 * share memory with it (arrays backed by SharedArrayBuffer). The items are cut into chunks that
 * the threads claim one at a time (compare-and-swap on a shared word tagged with the run, so a
 * worker that wakes after a run is over claims nothing). The caller blocks until every chunk is
 * done (Atomics.wait), so to the layers a task is an ordinary synchronous call. Tasks whose
 * arrays are not shared, or that are too small to pay for a wake-up, run on the calling thread.
 * If workers cannot start or a task fails in one, the pool falls back to the calling thread for
 * good and says why in `problem`; results are never lost, as the chunks a worker did not finish
 * are rerun inline.
 */
export class TaskPool {
  readonly threads: number
  problem: string | undefined
  private slots: WorkerSlot[] = []
  /** (run tag << 16) | next unclaimed chunk; shared with the workers. */
  private readonly claim = new Int32Array(new SharedArrayBuffer(4))
  /** done[c] = stamp when this run finished chunk c, −stamp when it failed in a worker. */
  private readonly done: Int32Array
  private stamp = 0
  private readonly workersOnly: boolean
  private readonly sgemm: NativeSgemm | undefined

  constructor (threads: number, options: TaskPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(threads))
    this.workersOnly = options.workersOnly ?? false
    this.sgemm = options.native?.sgemm
    this.done = new Int32Array(new SharedArrayBuffer(4 * this.threads * CHUNKS_PER_THREAD))
    if (this.threads > 1) this.start(this.threads - 1, options.native)
  }

  /** Whether tasks actually spread over more than one thread. */
  get parallel (): boolean {
    return this.slots.length > 0
  }

  /**
   * Runs `task` over [0, n), split over the threads when `work` (a rough element count) is large
   * enough. Throws what the task throws on the calling thread.
   */
  run<T extends TaskName> (task: T, n: number, work: number, ...args: TaskArgs<T>): void {
    const fn = TASKS[task] as (start: number, end: number, ...rest: unknown[]) => void
    setTaskSgemm(this.sgemm)
    const parts = this.slots.length === 0 || n < 2 || work < MIN_PARALLEL_WORK || !allShared(args)
      ? 1
      : Math.min(this.slots.length + 1, n)
    if (parts === 1) {
      fn(0, n, ...args)
      return
    }
    const chunks = Math.min(n, parts * CHUNKS_PER_THREAD)
    const bound = (c: number): number => Math.floor((c * n) / chunks)
    // Stamps are never 0 (a chunk no run has touched) and never negative (a failure).
    this.stamp = this.stamp >= 0x7fffffff ? 1 : this.stamp + 1
    const stamp = this.stamp
    const tag = stamp & 0xffff
    Atomics.store(this.claim, 0, tag << 16)
    const message: TaskMessage = { task, n, chunks, stamp, args }
    for (const slot of this.slots.slice(0, parts - 1)) {
      slot.port.postMessage(message)
      slot.generation++
      Atomics.store(slot.ctrl, REQUEST, slot.generation)
      Atomics.notify(slot.ctrl, REQUEST)
    }
    let failure: unknown
    if (!this.workersOnly) {
      let c = -1
      try {
        for (c = claimChunk(this.claim, tag, chunks); c >= 0; c = claimChunk(this.claim, tag, chunks)) {
          fn(bound(c), bound(c + 1), ...args)
          Atomics.store(this.done, c, stamp)
        }
      } catch (err) {
        failure = err
        if (c >= 0) Atomics.store(this.done, c, -stamp)
      }
    }
    // No chunk is taken from here on; wait for those that were (even after a local failure:
    // the workers write into the same arrays). With workersOnly, the workers take them all.
    const claimed = this.workersOnly ? chunks : closeClaims(this.claim, tag, chunks)
    const rerun: number[] = []
    let timedOut = false
    for (let c = 0; c < claimed; c++) {
      for (;;) {
        const v = Atomics.load(this.done, c)
        if (v === stamp) break
        if (v === -stamp) {
          rerun.push(c)
          break
        }
        if (Atomics.wait(this.done, c, v, TASK_TIMEOUT_MS) === 'timed-out') {
          timedOut = true
          rerun.push(c)
          break
        }
      }
    }
    const problems = this.drainProblems()
    // The same failure on this thread is the caller's (bad arguments), not the workers'.
    if (failure !== undefined) throw failure
    for (let c = claimed; c < chunks; c++) fn(bound(c), bound(c + 1), ...args)
    // Chunks that failed or hung in a worker run here. If one fails here too, the task itself is
    // at fault (bad arguments), which is the caller's error, and the workers stay in use; this
    // matters when the workers happened to claim every chunk before this thread claimed one.
    for (const c of rerun) fn(bound(c), bound(c + 1), ...args)
    if (timedOut) problems.unshift(`no answer within ${TASK_TIMEOUT_MS} ms`)
    if (rerun.length > 0 || problems.length > 0) this.disable(`a ${task} task failed in a worker thread: ${problems[0] ?? 'unknown error'}`)
  }

  /** Stops the workers; later tasks run on the calling thread. Idempotent. */
  close (): void {
    for (const slot of this.slots) {
      slot.port.close()
      slot.worker.terminate().catch(() => {})
    }
    this.slots = []
  }

  private start (count: number, native: TaskNative | undefined): void {
    const source = workerSource()
    try {
      for (let i = 0; i < count; i++) {
        const ctrl = new Int32Array(new SharedArrayBuffer(4 * 2))
        const { port1, port2 } = new MessageChannel()
        const workerData = { ctrl, port: port2, claim: this.claim, done: this.done, native: native === undefined ? undefined : { koffi: native.koffi, library: native.library } }
        const worker = new Worker(source, { eval: true, workerData, transferList: [port2] })
        // A forgotten close() must not keep the process alive.
        worker.unref()
        port1.unref()
        worker.on('error', () => {})
        this.slots.push({ worker, port: port1, ctrl, generation: 0 })
      }
      for (const slot of this.slots) {
        if (Atomics.wait(slot.ctrl, READY, 0, START_TIMEOUT_MS) === 'timed-out') throw new Error(`a worker thread did not start within ${START_TIMEOUT_MS} ms`)
      }
    } catch (err) {
      this.disable(err instanceof Error ? err.message : String(err))
    }
  }

  /** The error texts workers have posted (one per failed chunk), oldest first. */
  private drainProblems (): string[] {
    const problems: string[] = []
    for (const slot of this.slots) {
      for (let m = receiveMessageOnPort(slot.port); m !== undefined; m = receiveMessageOnPort(slot.port)) {
        problems.push(typeof m.message === 'string' ? m.message : 'unknown error')
      }
    }
    return problems
  }

  private disable (reason: string): void {
    this.problem ??= reason
    this.close()
  }
}

/**
 * Takes the next chunk of the run tagged `tag`, or −1 when none is left or the run is over.
 * Refers to nothing outside itself: the worker program runs its source text.
 */
export function claimChunk (claim: Int32Array, tag: number, chunks: number): number {
  for (;;) {
    const v = Atomics.load(claim, 0)
    const c = v & 0xffff
    if (v >>> 16 !== tag || c >= chunks) return -1
    if (Atomics.compareExchange(claim, 0, v, v + 1) === v) return c
  }
}

/** Ends claiming for the run tagged `tag`; returns how many chunks were taken. */
function closeClaims (claim: Int32Array, tag: number, chunks: number): number {
  for (;;) {
    const v = Atomics.load(claim, 0)
    const c = v & 0xffff
    if (c >= chunks) return chunks
    if (Atomics.compareExchange(claim, 0, v, (tag << 16) | chunks) === v) return c
  }
}

function allShared (args: readonly unknown[]): boolean {
  for (const a of args) {
    if (ArrayBuffer.isView(a) && !(a.buffer instanceof SharedArrayBuffer)) return false
  }
  return true
}

let cachedSource: string | undefined

/**
 * The worker program: the task functions' own source text plus a loop that waits on the
 * control words, then, for every task message on its port, claims and runs chunks until none
 * is left (a message whose run is over finds none). `__name` is defined because some
 * TypeScript transpilers (esbuild with keepNames) wrap nested functions in it. With `native`
 * in workerData it binds cblas_sgemm as impl.sgemm; if that fails, tasks that need it fail,
 * and the pool reruns their chunks on the calling thread.
 */
function workerSource (): string {
  if (cachedSource !== undefined) return cachedSource
  const constants = Object.entries(WORKER_CONSTANTS).map(([k, v]) => `const ${k} = ${v};`)
  const functions = [...WORKER_FUNCTIONS, claimChunk].map((f) => f.toString())
  const tasks = Object.entries(TASKS).map(([k, f]) => `  ${JSON.stringify(k)}: ${f.toString()},`)
  cachedSource = `'use strict';
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const __name = (f) => f;
${constants.join('\n')}
${functions.join('\n')}
const impl = { ${Object.entries(WORKER_LOOKUP).map(([k, f]) => `${k}: ${f}`).join(', ')} };
const TASKS = {
${tasks.join('\n')}
};
const { ctrl, port, claim, done, native } = workerData;
if (native) {
  try {
    const lib = require(native.koffi).load(native.library);
    impl.sgemm = lib.func(${JSON.stringify(SGEMM_SIGNATURE)});
  } catch (err) {
    impl.sgemm = () => { throw new Error('BLAS did not load in this worker: ' + String(err && err.message || err)); };
  }
}
Atomics.store(ctrl, ${READY}, 1);
Atomics.notify(ctrl, ${READY});
let generation = 0;
for (;;) {
  Atomics.wait(ctrl, ${REQUEST}, generation);
  generation = Atomics.load(ctrl, ${REQUEST});
  for (let received = receiveMessageOnPort(port); received !== undefined; received = receiveMessageOnPort(port)) {
    const m = received.message;
    const fn = TASKS[m.task];
    const tag = m.stamp & 0xffff;
    for (let c = claimChunk(claim, tag, m.chunks); c >= 0; c = claimChunk(claim, tag, m.chunks)) {
      try {
        fn(Math.floor(c * m.n / m.chunks), Math.floor((c + 1) * m.n / m.chunks), ...m.args);
        Atomics.store(done, c, m.stamp);
      } catch (err) {
        // Keep claiming: the calling thread may be waiting for every chunk (workersOnly).
        port.postMessage(String(err && err.stack || err));
        Atomics.store(done, c, -m.stamp);
      }
      Atomics.notify(done, c);
    }
  }
}
`
  return cachedSource
}
