import { z } from 'zod'
import { BaseDocument, TenantId } from './common.js'

/**
 * Usernames: 3–32 characters of lowercase letters, digits, `.`, `_` and `-`, starting with a
 * letter or digit. Lowercase only, so `Alice` and `alice` can never be two accounts.
 */
export const Username = z.string()
  .min(3, 'must be at least 3 characters')
  .max(32, 'must be at most 32 characters')
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'may contain only lowercase letters, digits, ".", "_" and "-", and must start with a letter or digit')

export const Password = z.string()
  .min(8, 'must be at least 8 characters')
  .max(1024, 'must be at most 1024 characters')

/** How a password is stored: scrypt with a per-user salt; never the password itself. */
export const PasswordHash = z.object({
  algorithm: z.literal('scrypt'),
  salt: z.string(),
  hash: z.string(),
  N: z.number().int(),
  r: z.number().int(),
  p: z.number().int()
})
export type PasswordHash = z.infer<typeof PasswordHash>

export const User = BaseDocument.extend({
  type: z.literal('user'),
  username: Username,
  email: z.string(),
  'password-hash': PasswordHash,
  /**
   * Key that signs this user's webhooks (HMAC-SHA256). Created on first use, rotated through
   * POST /users/me/webhook-secret; never part of UserView.
   */
  'webhook-secret': z.string().min(16).max(200).optional(),
  'webhook-secret-created-at': z.string().optional()
})
export type User = z.infer<typeof User>

export const WebhookSecretView = z.object({
  secret: z.string().describe('the HMAC-SHA256 key of X-ElasticThought-Signature'),
  'created-at': z.string().nullable().describe('when the secret was made')
})
export type WebhookSecretView = z.infer<typeof WebhookSecretView>

export const NewUser = z.object({
  username: Username,
  email: z.email().max(254),
  password: Password
}).strict()
export type NewUser = z.infer<typeof NewUser>

/** What the API shows of a user: never the password hash. */
export const UserView = z.object({
  id: TenantId,
  _id: z.string(),
  type: z.literal('user'),
  username: Username,
  email: z.string(),
  'created-at': z.string()
})
export type UserView = z.infer<typeof UserView>
