/** What the solver should do when a signal arrives (caffe::SolverAction). */
export type SolverAction = 'none' | 'stop' | 'snapshot'

/** The flag value is not one of stop, snapshot, none. Message as Caffe's. */
export class SignalEffectError extends Error {
  readonly code = 'ET_SIGNAL_EFFECT'
  constructor (value: string) {
    super(`Invalid signal effect "${value}" was specified`)
    this.name = 'SignalEffectError'
  }
}

export function parseSignalEffect (value: string): SolverAction {
  if (value === 'stop' || value === 'snapshot' || value === 'none') return value
  throw new SignalEffectError(value)
}

/** The part of `process` the handler needs; tests pass an EventEmitter. */
export interface SignalSource {
  on (event: 'SIGINT' | 'SIGHUP', listener: () => void): unknown
  off (event: 'SIGINT' | 'SIGHUP', listener: () => void): unknown
}

/**
 * Caffe's SignalHandler: SIGINT and SIGHUP only set flags; the solver polls `check()` between
 * iterations (and between test batches). SIGHUP wins when both arrived, and each flag is
 * consumed by the poll that sees it, as in signal_handler.cpp. While installed, the signals no
 * longer terminate the process, even with effect `none` (Caffe ignores them then too).
 */
export class SignalHandler {
  private gotInt = false
  private gotHup = false
  private readonly onInt = (): void => { this.gotInt = true }
  private readonly onHup = (): void => { this.gotHup = true }
  private readonly source: SignalSource
  private readonly intAction: SolverAction
  private readonly hupAction: SolverAction
  private installed = false

  constructor (source: SignalSource, sigintEffect: SolverAction, sighupEffect: SolverAction) {
    this.source = source
    this.intAction = sigintEffect
    this.hupAction = sighupEffect
  }

  install (): this {
    if (!this.installed) {
      this.source.on('SIGINT', this.onInt)
      this.source.on('SIGHUP', this.onHup)
      this.installed = true
    }
    return this
  }

  uninstall (): void {
    if (!this.installed) return
    this.source.off('SIGINT', this.onInt)
    this.source.off('SIGHUP', this.onHup)
    this.installed = false
  }

  readonly check = (): SolverAction => {
    if (this.gotHup) {
      this.gotHup = false
      return this.hupAction
    }
    if (this.gotInt) {
      this.gotInt = false
      return this.intAction
    }
    return 'none'
  }
}
