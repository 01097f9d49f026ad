import { TooManyRequestsError } from '../lib/errors.js'

export interface AuthThrottleOptions {
  /** How long failures are counted for (default 15 minutes). */
  windowMs?: number
  /** Failed checks one client may make against one username per window (default 10). */
  maxPerAccount?: number
  /** Failed checks one client may make in all per window (default 100). */
  maxPerClient?: number
  /** Counters kept at most; the oldest go first (default 100,000). */
  maxEntries?: number
  now?: () => number
}

interface Window {
  failures: number
  endsAt: number
}

/**
 * Counts failed password checks by client address, and by client and username, in fixed
 * windows, and refuses further checks past either limit until the window ends. It guards
 * against guessing and against burning the server's CPU on scrypt; a check served from the
 * verified-credentials cache costs neither, so it is never asked about.
 *
 * The per-account limit is per client too, so an attacker elsewhere cannot lock a user out;
 * behind a proxy every client has the proxy's address unless the server trusts the proxy
 * (`--trust-proxy`). A success clears only its own account's count: one valid account must not
 * reset a client's budget for guessing at others.
 */
export class AuthThrottle {
  private readonly windowMs: number
  private readonly maxPerAccount: number
  private readonly maxPerClient: number
  private readonly maxEntries: number
  private readonly now: () => number
  private readonly windows = new Map<string, Window>()

  constructor (options: AuthThrottleOptions = {}) {
    this.windowMs = options.windowMs ?? 15 * 60_000
    this.maxPerAccount = options.maxPerAccount ?? 10
    this.maxPerClient = options.maxPerClient ?? 100
    this.maxEntries = options.maxEntries ?? 100_000
    this.now = options.now ?? Date.now
  }

  /** Throws TooManyRequestsError if `client` may not try a password for `username` now. */
  check (client: string, username: string): void {
    const account = this.current(accountKey(client, username))
    if (account !== undefined && account.failures >= this.maxPerAccount) {
      throw this.refusal(account, `too many failed sign-ins for '${username}' from this address`)
    }
    const overall = this.current(clientKey(client))
    if (overall !== undefined && overall.failures >= this.maxPerClient) {
      throw this.refusal(overall, 'too many failed sign-ins from this address')
    }
  }

  failed (client: string, username: string): void {
    this.count(accountKey(client, username))
    this.count(clientKey(client))
  }

  succeeded (client: string, username: string): void {
    this.windows.delete(accountKey(client, username))
  }

  get size (): number {
    return this.windows.size
  }

  private current (key: string): Window | undefined {
    const window = this.windows.get(key)
    if (window === undefined || window.endsAt > this.now()) return window
    this.windows.delete(key)
    return undefined
  }

  private count (key: string): void {
    const window = this.current(key) ?? { failures: 0, endsAt: this.now() + this.windowMs }
    window.failures++
    // Re-inserted, so eviction takes the counters that were bumped longest ago.
    this.windows.delete(key)
    this.windows.set(key, window)
    while (this.windows.size > this.maxEntries) {
      const oldest = this.windows.keys().next()
      if (oldest.done === true) break
      this.windows.delete(oldest.value)
    }
  }

  private refusal (window: Window, what: string): TooManyRequestsError {
    const seconds = Math.max(1, Math.ceil((window.endsAt - this.now()) / 1000))
    return new TooManyRequestsError(`${what}; try again in ${seconds} s`, seconds)
  }
}

const accountKey = (client: string, username: string): string => `${client}\0${username}`
const clientKey = (client: string): string => client
