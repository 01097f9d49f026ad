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
  count: number
  endsAt: number
}

/**
 * Counts events per key in fixed windows, keeping at most `maxEntries` counters (the ones
 * bumped longest ago go first, so memory stays bounded under a flood of new addresses).
 */
class FixedWindows {
  private readonly windows = new Map<string, Window>()
  private readonly windowMs: number
  private readonly maxEntries: number
  private readonly now: () => number

  constructor (windowMs: number, maxEntries: number, now: () => number) {
    this.windowMs = windowMs
    this.maxEntries = maxEntries
    this.now = now
  }

  get size (): number {
    return this.windows.size
  }

  /** The key's window if it is still open. */
  current (key: string): Window | undefined {
    const window = this.windows.get(key)
    if (window === undefined || window.endsAt > this.now()) return window
    this.windows.delete(key)
    return undefined
  }

  count (key: string): void {
    const window = this.current(key) ?? { count: 0, endsAt: this.now() + this.windowMs }
    window.count++
    // Re-inserted, so eviction takes the counters that were bumped longest ago.
    this.windows.delete(key)
    this.windows.set(key, window)
    while (this.windows.size > this.maxEntries) {
      const oldest = this.windows.keys().next()
      if (oldest.done === true) break
      this.windows.delete(oldest.value)
    }
  }

  forget (key: string): void {
    this.windows.delete(key)
  }

  /** Throws TooManyRequestsError, saying when to come back, if the key reached `limit`. */
  refuseAt (key: string, limit: number, what: string): void {
    const window = this.current(key)
    if (window === undefined || window.count < limit) return
    const seconds = Math.max(1, Math.ceil((window.endsAt - this.now()) / 1000))
    throw new TooManyRequestsError(`${what}; try again in ${seconds} s`, seconds)
  }
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
  private readonly maxPerAccount: number
  private readonly maxPerClient: number
  private readonly windows: FixedWindows

  constructor (options: AuthThrottleOptions = {}) {
    this.maxPerAccount = options.maxPerAccount ?? 10
    this.maxPerClient = options.maxPerClient ?? 100
    this.windows = new FixedWindows(options.windowMs ?? 15 * 60_000, options.maxEntries ?? 100_000, options.now ?? Date.now)
  }

  /** Throws TooManyRequestsError if `client` may not try a password for `username` now. */
  check (client: string, username: string): void {
    // The name is whatever the client sent: shown short, it cannot bloat the answer.
    const shown = username.length > 64 ? `${username.slice(0, 64)}…` : username
    this.windows.refuseAt(accountKey(client, username), this.maxPerAccount, `too many failed sign-ins for '${shown}' from this address`)
    this.windows.refuseAt(client, this.maxPerClient, 'too many failed sign-ins from this address')
  }

  failed (client: string, username: string): void {
    this.windows.count(accountKey(client, username))
    this.windows.count(client)
  }

  succeeded (client: string, username: string): void {
    this.windows.forget(accountKey(client, username))
  }

  get size (): number {
    return this.windows.size
  }
}

export interface SignUpLimitOptions {
  /** Accounts one client address may create per window (default 20). */
  maxPerClient?: number
  /** Default 1 hour. */
  windowMs?: number
  maxEntries?: number
  now?: () => number
}

/**
 * Open registration's limit: each new account costs a scrypt hash and a document, so one
 * address may create only so many per hour. Accounts the admin creates (closed registration)
 * are not counted.
 */
export class SignUpLimit {
  private readonly maxPerClient: number
  private readonly windows: FixedWindows

  constructor (options: SignUpLimitOptions = {}) {
    this.maxPerClient = options.maxPerClient ?? 20
    this.windows = new FixedWindows(options.windowMs ?? 60 * 60_000, options.maxEntries ?? 100_000, options.now ?? Date.now)
  }

  /** Counts one attempt that will cost a hash; throws TooManyRequestsError past the limit. */
  take (client: string): void {
    this.windows.refuseAt(client, this.maxPerClient, 'too many accounts created from this address')
    this.windows.count(client)
  }
}

// Addresses contain no NUL, so an account's key never equals an address's.
const accountKey = (client: string, username: string): string => `${client}\0${username}`
