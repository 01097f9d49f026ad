import { referenceFields } from '../../models/documents.js'
import type { CouchDatabase } from './couch.js'
import { ConflictError, NotFoundError } from '../lib/errors.js'

export const DESIGN = 'elastic-thought'

/*
 * View map functions run inside the database (CouchDB's JavaScript engine, or PouchDB's), so
 * they are source strings. They use only ES5 and nothing from the outer scope.
 */
const byOwner = `function (doc) {
  if (doc['user-id'] && doc.type && doc['created-at']) emit([doc['user-id'], doc.type, doc['created-at'], doc._id], null);
}`

// Generated from models/documents.ts referenceFields so the view and the validation agree.
const byReference = `function (doc) {
  var table = ${JSON.stringify(referenceFields)};
  var refs = table[doc.type];
  if (!refs) return;
  for (var i = 0; i < refs.length; i++) {
    var value = doc;
    for (var j = 0; j < refs[i].path.length; j++) value = value ? value[refs[i].path[j]] : undefined;
    if (typeof value === 'string') emit(value, doc.type);
  }
}`

const byState = `function (doc) {
  if (doc.type && doc['processing-state']) emit([doc.type, doc['processing-state'], doc['lease-expires-at'] || ''], null);
}`

export const designDocument = {
  _id: `_design/${DESIGN}`,
  language: 'javascript',
  views: {
    'by-owner': { map: byOwner },
    'by-reference': { map: byReference },
    'by-state': { map: byState, reduce: '_count' }
  }
}

/** Installs or refreshes the design document; another process doing the same is fine. */
export async function installDesign (db: CouchDatabase): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let rev: string | undefined
    try {
      const current = await db.get(designDocument._id)
      if (typeof current === 'object' && current !== null) {
        if (JSON.stringify(Reflect.get(current, 'views')) === JSON.stringify(designDocument.views)) return
        const r: unknown = Reflect.get(current, '_rev')
        rev = typeof r === 'string' ? r : undefined
      }
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
    try {
      await db.put({ ...designDocument, ...(rev === undefined ? {} : { _rev: rev }) })
      return
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err
    }
  }
}
