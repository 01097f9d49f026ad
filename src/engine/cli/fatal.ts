import { AppError } from '../../lib/errors.js'
import { NetDefinitionError, WeightsMismatchError } from '../net.js'
import { UnknownBottomError } from '../net/insert-splits.js'
import { NetStateRuleError } from '../net/state-rules.js'
import { ProtoDecodeError, PrototxtError } from '../proto/errors.js'
import { ProtoUpgradeError } from '../proto/upgrade.js'
import { CaffeFileError } from '../solver/file-solver-io.js'
import { UnknownLrPolicyError } from '../solver/lr-policy.js'
import { SolverConfigError } from '../solver/param-updater.js'
import { SignalEffectError } from '../solver/signal-handler.js'
import { SolverSetupError, SolverStateError } from '../solver/solver.js'

/**
 * A fatal condition the CLI reports as one glog `F` line with Caffe's source tag, then exits
 * non-zero, like a failed CHECK in real Caffe (minus the stack dump).
 */
export class CaffeFatalError extends Error {
  readonly code = 'ET_CAFFE_FATAL'
  readonly where: string
  constructor (where: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CaffeFatalError'
    this.where = where
  }
}

/** Throws CaffeFatalError unless `ok`; the message is written as Caffe's CHECK would print it. */
export function check (ok: boolean, where: string, message: string): asserts ok {
  if (!ok) throw new CaffeFatalError(where, message)
}

export interface FatalLine {
  where: string
  message: string
  /** True for errors users cause (bad files, flags, shapes); false for bugs, which get a stack. */
  expected: boolean
}

/** Maps anything thrown by a command onto the F line real Caffe would print for it. */
export function fatalLineOf (err: unknown): FatalLine {
  const message = err instanceof Error ? err.message.replace(/\s*\n\s*/g, ' ') : String(err)
  const line = (where: string): FatalLine => ({ where, message, expected: true })
  if (err instanceof CaffeFatalError || err instanceof CaffeFileError) return line(err.where)
  if (err instanceof WeightsMismatchError) return line('net.cpp:757')
  if (err instanceof UnknownBottomError) return line('insert_splits.cpp:29')
  if (err instanceof NetStateRuleError) return line('net.cpp:267')
  if (err instanceof NetDefinitionError) return line('net.cpp:84')
  if (err instanceof SolverSetupError) return line(err.message.startsWith('Cannot write to snapshot prefix') ? 'solver.cpp:431' : 'solver.cpp:67')
  if (err instanceof SolverStateError) return line('sgd_solver.cpp:316')
  if (err instanceof UnknownLrPolicyError) return line('sgd_solver.cpp:60')
  if (err instanceof SolverConfigError) return line('sgd_solvers.hpp:75')
  if (err instanceof SignalEffectError) return line('caffe.cpp:176')
  if (err instanceof PrototxtError) return line('upgrade_proto.cpp:88')
  if (err instanceof ProtoUpgradeError) return line('upgrade_proto.cpp:669')
  if (err instanceof ProtoDecodeError) return line('upgrade_proto.cpp:95')
  // Every other project error carries a stable code and a message meant for users.
  if (err instanceof AppError) return line('caffe.cpp:0')
  if (err instanceof Error && typeof Reflect.get(err, 'code') === 'string' && String(Reflect.get(err, 'code')).startsWith('ET_')) {
    return line('caffe.cpp:0')
  }
  return { where: 'caffe.cpp:0', message, expected: false }
}
