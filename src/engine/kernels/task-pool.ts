import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import { TASKS, WORKER_CONSTANTS, WORKER_FUNCTIONS, WORKER_LOOKUP, type TaskArgs, type TaskName } from './tasks.js'

// Control words shared with each worker (Int32Array over a SharedArrayBuffer).
const REQUEST = 0
const DONE = 1
const STATUS = 2
const READY = 3

// Below this many elements of work a task runs on the calling thread: waking a worker and
// waiting for it costs tens of microseconds.
const MIN_PARALLEL_WORK = 1 << 16
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
  start: number
  end: number
  args: unknown[]
}

/**
 * Runs the TASKS data-parallel over the calling thread plus `threads − 1` worker threads that
 * share memory with it (arrays backed by SharedArrayBuffer). The caller blocks until every part
 * is done (Atomics.wait), so to the layers a task is an ordinary synchronous call. Tasks whose
 * arrays are not shared, or that are too small to pay for a wake-up, run on the calling thread.
 * If workers cannot start or a task fails in one, the pool falls back to the calling thread for
 * good and says why in `problem`; results are never lost, as the failed part is rerun inline.
 */
export class TaskPool {
  readonly threads: number
  problem: string | undefined
  private slots: WorkerSlot[] = []

  constructor (threads: number) {
    this.threads = Math.max(1, Math.floor(threads))
    if (this.threads > 1) this.start(this.threads - 1)
  }

  /** Whether tasks actually spread over more than one thread. */
  get parallel (): boolean {
    return this.slots.length > 0
  }

  /**
   * Runs `task` over [0, n), split evenly over the threads when `work` (a rough element count)
   * is large enough. Throws what the task throws.
   */
  run<T extends TaskName> (task: T, n: number, work: number, ...args: TaskArgs<T>): void {
    const fn = TASKS[task] as (start: number, end: number, ...rest: unknown[]) => void
    const parts = this.slots.length === 0 || n < 2 || work < MIN_PARALLEL_WORK || !allShared(args)
      ? 1
      : Math.min(this.slots.length + 1, n)
    if (parts === 1) {
      fn(0, n, ...args)
      return
    }
    const bounds = (k: number): number => Math.floor((k * n) / parts)
    const posted: Array<[WorkerSlot, number, number]> = []
    for (let k = 1; k < parts; k++) {
      const slot = this.slots[k - 1] as WorkerSlot
      const message: TaskMessage = { task, start: bounds(k), end: bounds(k + 1), args }
      slot.port.postMessage(message)
      slot.generation++
      Atomics.store(slot.ctrl, REQUEST, slot.generation)
      Atomics.notify(slot.ctrl, REQUEST)
      posted.push([slot, bounds(k), bounds(k + 1)])
    }
    let failure: unknown
    try {
      fn(0, bounds(1), ...args)
    } catch (err) {
      failure = err
    }
    // Wait for every worker even after a local failure: they write into the same arrays.
    const rerun: Array<[number, number]> = []
    const problems: string[] = []
    for (const [slot, s, e] of posted) {
      const problem = this.await(slot)
      if (problem !== undefined) {
        problems.push(problem)
        rerun.push([s, e])
      }
    }
    // The same failure on this thread is the caller's (bad arguments), not the workers'.
    if (failure !== undefined) throw failure
    if (problems.length > 0) this.disable(`a ${task} task failed in a worker thread: ${problems[0]}`)
    for (const [s, e] of rerun) fn(s, e, ...args)
  }

  /** Stops the workers; later tasks run on the calling thread. Idempotent. */
  close (): void {
    for (const slot of this.slots) {
      slot.port.close()
      slot.worker.terminate().catch(() => {})
    }
    this.slots = []
  }

  private start (count: number): void {
    const source = workerSource()
    try {
      for (let i = 0; i < count; i++) {
        const ctrl = new Int32Array(new SharedArrayBuffer(4 * 4))
        const { port1, port2 } = new MessageChannel()
        const worker = new Worker(source, { eval: true, workerData: { ctrl, port: port2 }, transferList: [port2] })
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

  /** Blocks until the slot's current task is done; returns the worker's error text, if any. */
  private await (slot: WorkerSlot): string | undefined {
    for (;;) {
      const done = Atomics.load(slot.ctrl, DONE)
      if (done === slot.generation) break
      if (Atomics.wait(slot.ctrl, DONE, done, TASK_TIMEOUT_MS) === 'timed-out') return `no answer within ${TASK_TIMEOUT_MS} ms`
    }
    if (Atomics.load(slot.ctrl, STATUS) === 0) return undefined
    const reply = receiveMessageOnPort(slot.port)
    return typeof reply?.message === 'string' ? reply.message : 'unknown error'
  }

  private disable (reason: string): void {
    this.problem ??= reason
    this.close()
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
 * control words, takes the task message from its port and runs it. `__name` is defined because
 * some TypeScript transpilers (esbuild with keepNames) wrap nested functions in it.
 */
function workerSource (): string {
  if (cachedSource !== undefined) return cachedSource
  const constants = Object.entries(WORKER_CONSTANTS).map(([k, v]) => `const ${k} = ${v};`)
  const functions = WORKER_FUNCTIONS.map((f) => f.toString())
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
const { ctrl, port } = workerData;
Atomics.store(ctrl, ${READY}, 1);
Atomics.notify(ctrl, ${READY});
let generation = 0;
for (;;) {
  Atomics.wait(ctrl, ${REQUEST}, generation);
  generation = Atomics.load(ctrl, ${REQUEST});
  const received = receiveMessageOnPort(port);
  try {
    if (received === undefined) throw new Error('task message missing');
    const m = received.message;
    TASKS[m.task](m.start, m.end, ...m.args);
    Atomics.store(ctrl, ${STATUS}, 0);
  } catch (err) {
    Atomics.store(ctrl, ${STATUS}, 1);
    port.postMessage(String(err && err.stack || err));
  }
  Atomics.store(ctrl, ${DONE}, generation);
  Atomics.notify(ctrl, ${DONE});
}
`
  return cachedSource
}
