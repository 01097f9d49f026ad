import type { TenantId } from '../../models/common.js'
import { Username } from '../../models/user.js'
import type { NewUser, PasswordHash, User, UserView } from '../../models/user.js'
import { ConflictError, NotFoundError } from '../lib/errors.js'
import { parseStored } from '../db/parse-stored.js'
import type { Documents } from '../db/documents.js'
import { AuthThrottle, SignUpLimit } from './auth-throttle.js'
import type { AuthThrottleOptions, SignUpLimitOptions } from './auth-throttle.js'
import { AuthCache, PasswordHasher } from './password.js'
import type { PasswordHasherOptions } from './password.js'

export type Principal =
  | { kind: 'user', tenantId: TenantId, username: string }
  | { kind: 'admin', username: string }

export function userIdOf (username: string): TenantId {
  return `user:${username}` as TenantId
}

/**
 * Accounts: creation with a scrypt-hashed password, and Basic-auth verification. The user
 * document's id is `user:<username>`, so a duplicate username is a CouchDB 409 on create.
 */
export class UserService {
  private readonly docs: Documents
  private readonly cache = new AuthCache()
  private readonly hasher: PasswordHasher
  private readonly throttle: AuthThrottle
  private readonly signUps: SignUpLimit
  private readonly admin: { username: string, hash: Promise<PasswordHash> } | null

  constructor (docs: Documents, admin: { username: string, password: string } | null, options: { hasher?: PasswordHasherOptions, throttle?: AuthThrottleOptions, signUps?: SignUpLimitOptions } = {}) {
    this.docs = docs
    this.hasher = new PasswordHasher(options.hasher)
    this.throttle = new AuthThrottle(options.throttle)
    this.signUps = new SignUpLimit(options.signUps)
    this.admin = admin === null ? null : { username: admin.username, hash: this.hasher.hash(admin.password) }
  }

  /**
   * Creates an account. `client` is the address of an open registration, which is limited per
   * address; null when the admin creates it.
   */
  async create (input: NewUser, client: string | null): Promise<UserView> {
    if (this.admin !== null && input.username === this.admin.username) throw new ConflictError(`username '${input.username}' is taken`)
    if (client !== null) this.signUps.take(client)
    const now = new Date().toISOString()
    const doc: User = {
      _id: userIdOf(input.username),
      type: 'user',
      username: input.username,
      email: input.email,
      'password-hash': await this.hasher.hash(input.password),
      'created-at': now,
      'updated-at': now
    }
    try {
      await this.docs.write(doc)
    } catch (err) {
      if (err instanceof ConflictError) throw new ConflictError(`username '${input.username}' is taken`)
      throw err
    }
    return viewOf(doc)
  }

  async get (tenantId: TenantId): Promise<UserView> {
    return viewOf(await this.read(tenantId))
  }

  /**
   * Checks a username and password from `client` (its address). Resolves to the principal, or
   * null for bad credentials. A cached success is honoured only while the user's stored hash is
   * the one it was checked against, so changing or deleting a user takes effect at once. Every
   * check that would cost a scrypt first asks the throttle, which refuses (429) a client that
   * failed too often; a cached success costs nothing and is never refused.
   */
  async authenticate (username: string, password: string, client: string): Promise<Principal | null> {
    if (this.admin !== null && username === this.admin.username) {
      const hash = await this.admin.hash
      return await this.verify(client, username, async () => await this.hasher.verify(password, hash)) ? { kind: 'admin', username } : null
    }
    if (!Username.safeParse(username).success) {
      await this.burn(client, username, password)
      return null
    }
    const tenantId = userIdOf(username)
    let user: User
    try {
      user = await this.read(tenantId)
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
      await this.burn(client, username, password)
      return null
    }
    const key = this.cache.key(username, password)
    const tag = user['password-hash'].salt + user['password-hash'].hash
    if (this.cache.lookup(key, tag) === tenantId) return { kind: 'user', tenantId, username }
    if (!await this.verify(client, username, async () => await this.hasher.verify(password, user['password-hash']))) return null
    this.cache.remember(key, tenantId, tag)
    return { kind: 'user', tenantId, username }
  }

  /** No such user: as slow as a wrong password, and counted as one. */
  private async burn (client: string, username: string, password: string): Promise<void> {
    await this.verify(client, username, async () => { await this.hasher.burn(password); return false })
  }

  /** Runs one costly check under the throttle, and tells it how the check went. */
  private async verify (client: string, username: string, check: () => Promise<boolean>): Promise<boolean> {
    this.throttle.check(client, username)
    const ok = await check()
    if (ok) this.throttle.succeeded(client, username)
    else this.throttle.failed(client, username)
    return ok
  }

  /** The changes feed saw a user document change: drop its cached verifications. */
  forget (userId: string): void {
    this.cache.forgetUser(userId)
  }

  private async read (tenantId: TenantId): Promise<User> {
    return parseStored('user', await this.docs.read(tenantId))
  }
}

function viewOf (user: User): UserView {
  return {
    id: userIdOf(user.username),
    _id: user._id,
    type: 'user',
    username: user.username,
    email: user.email,
    'created-at': user['created-at']
  }
}
