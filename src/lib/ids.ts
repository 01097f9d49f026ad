import { randomUUID } from 'node:crypto'

/** A new document id: 32 lowercase hex characters, the shape Sync Gateway gave the original's docs. */
export function newDocId (): string {
  return randomUUID().replaceAll('-', '')
}
