import type { SolverParameter } from '../proto/caffe.js'
import type { LrSchedule } from './lr-policy.js'
import { SOLVER_TYPES, SolverConfigError, type SolverType, type UpdateHyperParams } from './param-updater.js'

/** A SolverParameter with Caffe's proto2 defaults applied and the deprecated fields upgraded. */
export interface SolverConfig {
  type: SolverType
  schedule: LrSchedule
  hyper: UpdateHyperParams
  display: number
  averageLoss: number
  maxIter: number
  testIter: number[]
  testInterval: number
  testInitialization: boolean
  testComputeLoss: boolean
  snapshot: number
  snapshotPrefix: string | undefined
  snapshotDiff: boolean
  snapshotFormat: 'HDF5' | 'BINARYPROTO'
  snapshotAfterTrain: boolean
  randomSeed: number
  debugInfo: boolean
}

const LEGACY_TYPES: Record<string, SolverType> = {
  SGD: 'SGD', NESTEROV: 'Nesterov', ADAGRAD: 'AdaGrad', RMSPROP: 'RMSProp', ADADELTA: 'AdaDelta', ADAM: 'Adam'
}

const f = Math.fround

/**
 * The solver type after Caffe's UpgradeSolverType: the V0 `solver_type: NESTEROV` enum maps onto
 * the string `type`; giving both is an error, as in Caffe.
 */
export function solverTypeOf (p: SolverParameter): SolverType {
  if (p.solver_type !== undefined) {
    if (p.type !== undefined) {
      throw new SolverConfigError('Failed to upgrade solver: old solver_type field (enum) and new type field (string) cannot be both specified.')
    }
    const t = LEGACY_TYPES[p.solver_type]
    if (t === undefined) throw new SolverConfigError(`Unknown solver type: ${p.solver_type}`)
    return t
  }
  const t = p.type ?? 'SGD'
  const known = SOLVER_TYPES.find((k) => k === t)
  if (known === undefined) {
    throw new SolverConfigError(`Unknown solver type: ${t} (known types: ${[...SOLVER_TYPES].sort().join(', ')})`)
  }
  return known
}

/**
 * Resolves every field the solver reads. Float fields are rounded to float32 as Caffe stores
 * them, so lr and update arithmetic starts from the same values real Caffe would use.
 */
export function resolveSolverConfig (p: SolverParameter): SolverConfig {
  const averageLoss = p.average_loss ?? 1
  if (averageLoss < 1) throw new SolverConfigError('average_loss should be non-negative.')
  return {
    type: solverTypeOf(p),
    schedule: {
      lrPolicy: p.lr_policy ?? '',
      baseLr: f(p.base_lr ?? 0),
      gamma: f(p.gamma ?? 0),
      power: f(p.power ?? 0),
      stepsize: p.stepsize ?? 0,
      stepvalue: [...p.stepvalue],
      maxIter: p.max_iter ?? 0
    },
    hyper: {
      momentum: f(p.momentum ?? 0),
      momentum2: f(p.momentum2 ?? 0.999),
      delta: f(p.delta ?? 1e-8),
      rmsDecay: f(p.rms_decay ?? 0.99),
      weightDecay: f(p.weight_decay ?? 0),
      regularizationType: p.regularization_type ?? 'L2',
      clipGradients: f(p.clip_gradients ?? -1),
      iterSize: p.iter_size ?? 1
    },
    display: p.display ?? 0,
    averageLoss,
    maxIter: p.max_iter ?? 0,
    testIter: [...p.test_iter],
    testInterval: p.test_interval ?? 0,
    testInitialization: p.test_initialization ?? true,
    testComputeLoss: p.test_compute_loss ?? false,
    snapshot: p.snapshot ?? 0,
    snapshotPrefix: p.snapshot_prefix,
    snapshotDiff: p.snapshot_diff ?? false,
    snapshotFormat: p.snapshot_format ?? 'BINARYPROTO',
    snapshotAfterTrain: p.snapshot_after_train ?? true,
    randomSeed: p.random_seed ?? -1,
    debugInfo: p.debug_info ?? false
  }
}
