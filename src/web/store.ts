import type { Doc } from './api.js'

export type ResourceType = 'datafile' | 'dataset' | 'solver' | 'training-job' | 'classifier' | 'classify-job'

export interface Resource {
  type: ResourceType
  plural: string
  title: string
}

export const RESOURCES: readonly Resource[] = [
  { type: 'datafile', plural: 'datafiles', title: 'Datafiles' },
  { type: 'dataset', plural: 'datasets', title: 'Datasets' },
  { type: 'solver', plural: 'solvers', title: 'Solvers' },
  { type: 'training-job', plural: 'training-jobs', title: 'Training jobs' },
  { type: 'classifier', plural: 'classifiers', title: 'Classifiers' },
  { type: 'classify-job', plural: 'classify-jobs', title: 'Classify jobs' }
]

export function resourceOf (type: ResourceType): Resource {
  const found = RESOURCES.find((r) => r.type === type)
  if (found === undefined) throw new Error(`unknown resource ${type}`)
  return found
}

export function isResourceType (value: unknown): value is ResourceType {
  return RESOURCES.some((r) => r.type === value)
}

type Listener = (type: ResourceType, id: string | null) => void

const created = (doc: Doc): string => typeof doc['created-at'] === 'string' ? doc['created-at'] : ''

/**
 * The documents the dashboard knows, by type; pages render from here and re-render when told.
 * Fed by list loads, single reads, and the live change stream, in any order: a document only
 * ever moves forward (an older `updated-at` never replaces a newer one).
 */
export class Store {
  private readonly docs = new Map<ResourceType, Map<string, Doc>>()
  private readonly loaded = new Set<ResourceType>()
  private readonly listeners = new Set<Listener>()

  subscribe (listener: Listener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  isLoaded (type: ResourceType): boolean {
    return this.loaded.has(type)
  }

  get (type: ResourceType, id: string): Doc | undefined {
    return this.docs.get(type)?.get(id)
  }

  /** Newest first, as the API lists them. */
  list (type: ResourceType): Doc[] {
    const docs = [...(this.docs.get(type)?.values() ?? [])]
    return docs.sort((a, b) => created(b).localeCompare(created(a)) || b.id.localeCompare(a.id))
  }

  put (type: ResourceType, doc: Doc): void {
    const map = this.map(type)
    const old = map.get(doc.id)
    if (old !== undefined && String(old['updated-at'] ?? '') > String(doc['updated-at'] ?? '')) return
    map.set(doc.id, doc)
    this.emit(type, doc.id)
  }

  remove (type: ResourceType, id: string): void {
    if (this.docs.get(type)?.delete(id) === true) this.emit(type, id)
  }

  /**
   * Takes a fresh first page of a list. Documents newer than the page's oldest but missing
   * from it were deleted; older ones are beyond the page and stay.
   */
  replacePage (type: ResourceType, items: Doc[], complete: boolean): void {
    const map = this.map(type)
    const oldest = items.length === 0 ? '' : created(items[items.length - 1] as Doc)
    const keep = new Set(items.map((d) => d.id))
    for (const [id, doc] of map) {
      if (!keep.has(id) && (complete || created(doc) >= oldest)) map.delete(id)
    }
    for (const doc of items) {
      const old = map.get(doc.id)
      if (old === undefined || String(old['updated-at'] ?? '') <= String(doc['updated-at'] ?? '')) map.set(doc.id, doc)
    }
    this.loaded.add(type)
    this.emit(type, null)
  }

  clear (): void {
    this.docs.clear()
    this.loaded.clear()
  }

  private map (type: ResourceType): Map<string, Doc> {
    let map = this.docs.get(type)
    if (map === undefined) {
      map = new Map()
      this.docs.set(type, map)
    }
    return map
  }

  private emit (type: ResourceType, id: string | null): void {
    for (const listener of this.listeners) listener(type, id)
  }
}
