import { randomBytes } from 'node:crypto'
import type { TenantId } from '../../models/common.js'
import type { User, WebhookSecretView } from '../../models/user.js'
import { casUpdate } from '../db/cas-update.js'
import type { Documents } from '../db/documents.js'
import { parseStored } from '../db/parse-stored.js'

/**
 * Per-user webhook signing keys, kept in the user document (`webhook-secret`). A key is made
 * on first use — the first GET /users/me/webhook-secret or the first delivery, whichever
 * comes first — so every user can verify every webhook they receive. Rotation replaces it at
 * once; deliveries after that are signed with the new key. NotFoundError if the user is gone.
 */
export class WebhookSecrets {
  private readonly docs: Documents

  constructor (docs: Documents) {
    this.docs = docs
  }

  /** The user's key, created now if they have none. */
  async get (tenant: TenantId): Promise<WebhookSecretView> {
    return await this.change(tenant, false)
  }

  /** A new key for the user; the old one stops being used at once. */
  async rotate (tenant: TenantId): Promise<WebhookSecretView> {
    return await this.change(tenant, true)
  }

  private async change (tenant: TenantId, replace: boolean): Promise<WebhookSecretView> {
    const result = await casUpdate<User>(
      async () => parseStored('user', await this.docs.read(tenant)),
      async (doc) => await this.docs.write(doc),
      (user) => {
        if (!replace && user['webhook-secret'] !== undefined) return null
        const now = new Date().toISOString()
        return { ...user, 'webhook-secret': newSecret(), 'webhook-secret-created-at': now, 'updated-at': now }
      }
    )
    const secret = result.doc['webhook-secret']
    if (secret === undefined) throw new Error(`user ${tenant} has no webhook secret after it was created`)
    return { secret, 'created-at': result.doc['webhook-secret-created-at'] ?? null }
  }
}

// 256 random bits; the prefix makes a leaked key recognisable in logs and secret scanners.
function newSecret (): string {
  return `whsec_${randomBytes(32).toString('base64url')}`
}
