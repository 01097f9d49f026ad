/** The learning-rate schedule fields of a SolverParameter, with Caffe's defaults applied. */
export interface LrSchedule {
  lrPolicy: string
  baseLr: number
  gamma: number
  power: number
  stepsize: number
  stepvalue: readonly number[]
  maxIter: number
}

/** Result of one learning-rate evaluation; `currentStep` is the solver's (persisted) step counter. */
export interface LrStep {
  rate: number
  currentStep: number
  /** Set when a multistep boundary was crossed (Caffe logs "MultiStep Status" then). */
  multistepAdvanced: boolean
}

export const LR_POLICIES = ['fixed', 'step', 'exp', 'inv', 'multistep', 'poly', 'sigmoid'] as const

/** Thrown for an lr_policy Caffe does not know; the message is Caffe's. */
export class UnknownLrPolicyError extends Error {
  readonly code = 'ET_UNKNOWN_LR_POLICY'
  constructor (policy: string) {
    super(`Unknown learning rate policy: ${policy}`)
    this.name = 'UnknownLrPolicyError'
  }
}

const f = Math.fround

/**
 * Caffe's SGDSolver::GetLearningRate. Caffe computes in single precision (`Dtype` is float),
 * so every intermediate is rounded to float32 to print the same digits in the log.
 * `currentStep` is read and (for step/multistep) advanced exactly as Caffe does: multistep moves
 * at most one boundary per call, which is why the solver must call this every iteration.
 */
export function learningRate (s: LrSchedule, iter: number, currentStep: number): LrStep {
  let step = currentStep
  let advanced = false
  let rate: number
  switch (s.lrPolicy) {
    case 'fixed':
      rate = s.baseLr
      break
    case 'step':
      if (s.stepsize <= 0) throw new RangeError('lr_policy "step" needs stepsize > 0')
      step = Math.floor(iter / s.stepsize)
      rate = f(s.baseLr * f(Math.pow(s.gamma, step)))
      break
    case 'exp':
      rate = f(s.baseLr * f(Math.pow(s.gamma, iter)))
      break
    case 'inv':
      rate = f(s.baseLr * f(Math.pow(f(1 + f(s.gamma * iter)), -s.power)))
      break
    case 'multistep': {
      const boundary = s.stepvalue[step]
      if (boundary !== undefined && iter >= boundary) {
        step++
        advanced = true
      }
      rate = f(s.baseLr * f(Math.pow(s.gamma, step)))
      break
    }
    case 'poly':
      rate = f(s.baseLr * f(Math.pow(f(1 - f(iter / s.maxIter)), s.power)))
      break
    case 'sigmoid':
      rate = f(s.baseLr * f(1 / f(1 + f(Math.exp(f(-s.gamma * f(iter - s.stepsize)))))))
      break
    default:
      throw new UnknownLrPolicyError(s.lrPolicy)
  }
  return { rate, currentStep: step, multistepAdvanced: advanced }
}
