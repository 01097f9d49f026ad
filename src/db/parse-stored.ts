import { storedSchemas } from '../../models/documents.js'
import type { DocumentOf } from '../../models/documents.js'
import type { DocumentType } from '../../models/common.js'
import { AppError } from '../lib/errors.js'

// Parsed copies of raw documents, by raw object identity. The read cache hands out the same raw
// object until the document changes, so a hot document is parsed once, not once per request.
const parsed = new WeakMap<object, { type: DocumentType, doc: unknown }>()

/**
 * Parses a stored document of `type`, keeping fields this version does not know. The result
 * is frozen because it may be shared between requests: change documents by copying them.
 */
export function parseStored<T extends DocumentType> (type: T, raw: unknown): DocumentOf<T> {
  if (typeof raw === 'object' && raw !== null) {
    const hit = parsed.get(raw)
    if (hit !== undefined && hit.type === type) return hit.doc as DocumentOf<T>
  }
  const result = storedSchemas[type].safeParse(raw)
  if (!result.success) {
    throw new AppError(500, 'ET_CORRUPT_DOCUMENT', `stored ${type} does not match its schema`, { cause: result.error })
  }
  const doc = deepFreeze(result.data)
  if (typeof raw === 'object' && raw !== null) parsed.set(raw, { type, doc })
  return doc as DocumentOf<T>
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
