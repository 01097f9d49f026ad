import { afterEach, describe, expect, it } from 'vitest'
import { ChangeHub } from '../../src/services/change-hub.js'
import type { EventSink } from '../../src/services/change-hub.js'
import type { TenantId } from '../../models/common.js'

/** A subscriber that keeps what it is sent; `pendingBytes` plays a client that stopped reading. */
class RecordingSink implements EventSink {
  readonly written: string[] = []
  closed: 'slow' | 'shutdown' | null = null
  pendingBytes = 0
  stalled = false

  write (text: string): void {
    this.written.push(text)
    if (this.stalled) this.pendingBytes += Buffer.byteLength(text)
  }

  close (reason: 'slow' | 'shutdown'): void {
    this.closed = reason
  }

  changes (): Array<{ id: string, deleted: boolean }> {
    return this.written.filter((w) => w.startsWith('event: change')).map((w) => JSON.parse(w.split('\n')[1]?.slice(6) ?? 'null'))
  }
}

const alice = 'user:alice' as TenantId
const bob = 'user:bob' as TenantId
const now = new Date().toISOString()

function datafile (id: string, owner: string, extra: Record<string, unknown> = {}): { seq: number, id: string, doc: Record<string, unknown> } {
  return {
    seq: 1,
    id,
    doc: { _id: id, _rev: '1-a', type: 'datafile', 'user-id': owner, 'created-at': now, 'updated-at': now, 'processing-state': 'pending', url: null, ...extra }
  }
}

describe('ChangeHub', () => {
  const hubs: ChangeHub[] = []
  const hub = (options: ConstructorParameters<typeof ChangeHub>[0] = {}): ChangeHub => {
    const h = new ChangeHub(options)
    hubs.push(h)
    return h
  }
  afterEach(() => { for (const h of hubs.splice(0)) h.close() })

  it('sends a change to every stream of its owner and to no one else', () => {
    const h = hub()
    const a1 = new RecordingSink()
    const a2 = new RecordingSink()
    const b = new RecordingSink()
    h.subscribe(alice, a1)
    h.subscribe(alice, a2)
    h.subscribe(bob, b)
    h.publish(datafile('d1', 'user:alice'))
    expect(a1.changes().map((c) => c.id)).toEqual(['d1'])
    expect(a2.changes().map((c) => c.id)).toEqual(['d1'])
    expect(b.changes()).toEqual([])
    expect(a1.written[0]).toMatch(/^retry: 3000\nevent: ready\n/)
  })

  it('drops fields the API does not show and adds id', () => {
    const h = hub()
    const a = new RecordingSink()
    h.subscribe(alice, a)
    h.publish(datafile('d1', 'user:alice', { 'internal-secret': 'x' }))
    const event = JSON.parse(a.written[1]?.split('\n')[1]?.slice(6) ?? 'null')
    expect(event.doc.id).toBe('d1')
    expect(event.doc['internal-secret']).toBeUndefined()
    expect(event.state).toBe('pending')
  })

  it('ignores user documents and documents without an owner', () => {
    const h = hub()
    const a = new RecordingSink()
    h.subscribe(alice, a)
    h.publish({ seq: 1, id: 'user:alice', doc: { _id: 'user:alice', type: 'user', 'user-id': 'user:alice', 'password-hash': 'scrypt$…' } })
    h.publish({ seq: 2, id: 'x', doc: { _id: 'x', type: 'datafile' } })
    h.publish({ seq: 3, id: 'y' })
    expect(a.changes()).toEqual([])
  })

  it('routes a deletion to the owner it remembered, and forgets owners past its bound', () => {
    const h = hub({ rememberIds: 2 })
    const a = new RecordingSink()
    const b = new RecordingSink()
    h.subscribe(alice, a)
    h.subscribe(bob, b)
    h.publish(datafile('d1', 'user:alice'))
    h.publish(datafile('d2', 'user:alice'))
    h.publish(datafile('d3', 'user:bob'))
    // d1 was evicted by d3: its deletion cannot be attributed, so it goes nowhere.
    h.publish({ seq: 9, id: 'd1', deleted: true })
    h.publish({ seq: 10, id: 'd2', deleted: true })
    expect(a.changes()).toEqual([expect.objectContaining({ id: 'd1', deleted: false }), expect.objectContaining({ id: 'd2', deleted: false }), expect.objectContaining({ id: 'd2', deleted: true })])
    expect(b.changes().map((c) => c.id)).toEqual(['d3'])
  })

  it('drops a client that stops taking its data, and keeps serving the others', () => {
    const h = hub({ maxPendingBytes: 2000 })
    const slow = new RecordingSink()
    const fast = new RecordingSink()
    h.subscribe(alice, slow)
    h.subscribe(alice, fast)
    slow.stalled = true
    for (let i = 0; i < 20; i++) h.publish(datafile(`d${i}`, 'user:alice', { name: 'n'.repeat(100) }))
    expect(slow.closed).toBe('slow')
    expect(fast.closed).toBeNull()
    expect(fast.changes()).toHaveLength(20)
    expect(slow.changes().length).toBeLessThan(20)
    expect(h.stats).toEqual({ subscribers: 1, dropped: 1 })
    // Once dropped, the slow client gets nothing more.
    const sent = slow.written.length
    h.publish(datafile('late', 'user:alice'))
    expect(slow.written.length).toBe(sent)
  })

  it('beats on idle streams', async () => {
    const h = hub({ heartbeatMs: 30 })
    const a = new RecordingSink()
    h.subscribe(alice, a)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(a.written.filter((w) => w === ': heartbeat\n\n').length).toBeGreaterThanOrEqual(2)
  })

  it('caps streams per tenant and frees a slot on unsubscribe', () => {
    const h = hub({ maxPerTenant: 1 })
    const off = h.subscribe(alice, new RecordingSink())
    expect(() => h.subscribe(alice, new RecordingSink())).toThrow(/at most 1/)
    h.subscribe(bob, new RecordingSink())
    off()
    h.subscribe(alice, new RecordingSink())
    expect(h.stats.subscribers).toBe(2)
  })

  it('close ends every stream', () => {
    const h = hub()
    const a = new RecordingSink()
    h.subscribe(alice, a)
    h.close()
    expect(a.closed).toBe('shutdown')
    expect(h.stats.subscribers).toBe(0)
    expect(() => h.subscribe(alice, new RecordingSink())).toThrow()
  })
})
