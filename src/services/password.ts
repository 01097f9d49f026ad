import { hash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { availableParallelism } from 'node:os'
import type { PasswordHash } from '../../models/user.js'
import { UnavailableError } from '../lib/errors.js'

// scrypt cost: N=2^15, r=8 takes ~50–100 ms and 32 MiB per hash — expensive for an attacker
// with a stolen database, which is why verification results are cached (see AuthCache).
const N = 1 << 15
const R = 8
const P = 1
const KEY_LENGTH = 32

function derive (password: string, salt: Buffer, params: { N: number, r: number, p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r }, (err, key) => {
      if (err !== null) reject(err)
      else resolve(key)
    })
  })
}

export interface PasswordHasherOptions {
  /** scrypt runs at once at most (default: the core count, at most 4, libuv's thread pool). */
  concurrency?: number
  /** Checks waiting for a turn at most; past that they fail at once with a 503 (default 64). */
  maxWaiting?: number
}

/**
 * Hashes and verifies passwords with scrypt, a few at a time. scrypt runs on libuv's thread
 * pool, which file and DNS work share: a flood of sign-ins (right or wrong) would otherwise take
 * every thread and every core. Waiting checks queue in order; a full queue is refused with a
 * 503 rather than growing without bound.
 */
export class PasswordHasher {
  private readonly concurrency: number
  private readonly maxWaiting: number
  private running = 0
  private readonly waiting: Array<() => void> = []
  // Checked against when the user does not exist, so "no such user" costs the same time as a
  // wrong password and usernames cannot be discovered by timing.
  private decoy: Promise<PasswordHash> | undefined

  constructor (options: PasswordHasherOptions = {}) {
    this.concurrency = options.concurrency ?? Math.min(4, availableParallelism())
    this.maxWaiting = options.maxWaiting ?? 64
  }

  get stats (): { running: number, waiting: number } {
    return { running: this.running, waiting: this.waiting.length }
  }

  async hash (password: string): Promise<PasswordHash> {
    const salt = randomBytes(16)
    const key = await this.derive(password, salt, { N, r: R, p: P })
    return { algorithm: 'scrypt', salt: salt.toString('base64'), hash: key.toString('base64'), N, r: R, p: P }
  }

  /** Constant-time check of a password against a stored hash. */
  async verify (password: string, stored: PasswordHash): Promise<boolean> {
    const expected = Buffer.from(stored.hash, 'base64')
    const key = await this.derive(password, Buffer.from(stored.salt, 'base64'), stored)
    return key.length === expected.length && timingSafeEqual(key, expected)
  }

  /** Spends what a verification costs, for a user that does not exist. */
  async burn (password: string): Promise<void> {
    // A decoy that failed to hash (a full queue) is made again next time, not kept failed.
    this.decoy ??= this.hash(randomBytes(16).toString('hex')).catch((err: unknown) => { this.decoy = undefined; throw err })
    await this.verify(password, await this.decoy)
  }

  private async derive (password: string, salt: Buffer, params: { N: number, r: number, p: number }): Promise<Buffer> {
    await this.turn()
    try {
      return await derive(password, salt, params)
    } finally {
      this.running--
      this.waiting.shift()?.()
    }
  }

  private async turn (): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++
      return
    }
    if (this.waiting.length >= this.maxWaiting) throw new UnavailableError('too many password checks are waiting; try again shortly')
    // The finishing check hands its slot straight over, so `running` stays counted.
    await new Promise<void>((resolve) => { this.waiting.push(() => { this.running++; resolve() }) })
  }
}

/**
 * Remembers successful verifications so a busy client does not pay a full scrypt per request.
 * Entries are keyed by SHA-256(secret, username, password) with a per-process random secret:
 * the password is never stored, and the key is useless outside this process. An entry also
 * records the stored hash it was checked against, so a password change invalidates it.
 */
export class AuthCache {
  private readonly secret = randomBytes(32).toString('base64')
  private readonly entries = new Map<string, { userId: string, hashTag: string, expires: number }>()
  private readonly ttlMs: number
  private readonly maxEntries: number

  constructor (options: { ttlMs?: number, maxEntries?: number } = {}) {
    this.ttlMs = options.ttlMs ?? 5 * 60_000
    this.maxEntries = options.maxEntries ?? 10_000
  }

  key (username: string, password: string): string {
    // One native call, a fifth of an HMAC object's cost on every authenticated request. A keyed
    // prefix is enough here: the digest only ever indexes this map and is never shown, so
    // length extension (what HMAC's construction guards against) has nothing to work on.
    // Usernames cannot contain NUL, so the fields cannot run into each other.
    return hash('sha256', `${this.secret}\0${username}\0${password}`, 'base64url')
  }

  /** The cached user id, or undefined if absent, expired or checked against another hash. */
  lookup (key: string, hashTag: string | undefined): string | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expires < Date.now() || (hashTag !== undefined && entry.hashTag !== hashTag)) {
      this.entries.delete(key)
      return undefined
    }
    return entry.userId
  }

  /** The tag of the hash an entry was checked against (to re-validate against the current user). */
  hashTagOf (key: string): string | undefined {
    return this.entries.get(key)?.hashTag
  }

  remember (key: string, userId: string, hashTag: string): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
    this.entries.set(key, { userId, hashTag, expires: Date.now() + this.ttlMs })
  }

  /** Drops every entry of a user (password changed, user deleted). */
  forgetUser (userId: string): void {
    for (const [key, entry] of this.entries) if (entry.userId === userId) this.entries.delete(key)
  }
}
