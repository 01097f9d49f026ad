import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Change } from '../../src/db/change.js'
import { ChangeHub } from '../../src/services/change-hub.js'
import type { ChangeHistory, EventSink } from '../../src/services/change-hub.js'
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

  describe('resuming a stream', () => {
    /** A history over a list of changes whose reads wait until `release()`: live changes can arrive meanwhile. */
    const history = (changes: Change[], position = 100): ChangeHistory & { release: () => void, reads: number } => {
      let release = (): void => {}
      const gate = new Promise<void>((resolve) => { release = resolve })
      const h = {
        reads: 0,
        release: () => { release() },
        position: async () => position,
        read: async (since: string, limit: number) => {
          h.reads++
          await gate
          const after = changes.filter((c) => Number(c.seq) > Number(since)).slice(0, limit)
          return { changes: after, last: after.at(-1)?.seq ?? since }
        }
      }
      return h
    }
    const frames = (sink: RecordingSink): Array<{ event: string, id: string | undefined, data: Record<string, unknown> }> => sink.written.filter((w) => !w.startsWith(':')).map((w) => {
      const lines = w.split('\n')
      return {
        event: lines.find((l) => l.startsWith('event: '))?.slice(7) ?? '',
        id: lines.find((l) => l.startsWith('id: '))?.slice(4),
        data: JSON.parse(lines.find((l) => l.startsWith('data: '))?.slice(6) ?? 'null')
      }
    })
    const at = (seq: number, rev: number, change: ReturnType<typeof datafile>): Change => ({ ...change, seq, changes: [{ rev: `${rev}-x` }] })

    it('sends ready, then the latest missed state of each document, then live changes that came meanwhile, skipping states older than those sent', async () => {
      const past = [
        at(11, 1, datafile('d1', 'user:alice')),
        at(12, 1, datafile('b1', 'user:bob')),
        at(13, 1, datafile('d2', 'user:alice')),
        at(14, 2, datafile('d1', 'user:alice', { 'processing-state': 'processing' }))
      ]
      const source = history(past)
      const h = hub({ history: source })
      const a = new RecordingSink()
      h.subscribe(alice, a, { lastEventId: '10' })
      await vi.waitFor(() => { expect(source.reads).toBe(1) })
      // Live while the history is read: an old state of d1 (the feed lagging behind the read),
      // then a newer one and a new document. Heartbeats do not go out before ready.
      h.publish(at(14, 2, datafile('d1', 'user:alice', { 'processing-state': 'processing' })))
      h.publish(at(15, 3, datafile('d1', 'user:alice', { 'processing-state': 'finished_successfully' })))
      h.publish(at(16, 1, datafile('d3', 'user:alice')))
      expect(a.written).toEqual([])
      source.release()
      await vi.waitFor(() => { expect(frames(a).filter((f) => f.event === 'change')).toHaveLength(4) })
      const sent = frames(a)
      expect(sent[0]).toEqual({ event: 'ready', id: undefined, data: { 'heartbeat-ms': 15_000, resumed: true } })
      expect(sent.slice(1).map((f) => [f.data.id, f.data.state, f.id])).toEqual([
        ['d2', 'pending', '13'],
        ['d1', 'processing', '14'],
        ['d1', 'finished_successfully', '15'],
        ['d3', 'pending', '16']
      ])
    })

    it('a fresh stream gets the current position as its ready id; one too far behind, or whose history fails, reloads', async () => {
      const many = Array.from({ length: 8 }, (_, i) => at(i + 1, 1, datafile(`d${i}`, 'user:alice')))
      const source = history(many, 42)
      source.release()
      const h = hub({ history: source, maxReplay: 5 })
      const fresh = new RecordingSink()
      h.subscribe(alice, fresh)
      await vi.waitFor(() => { expect(fresh.written).toHaveLength(1) })
      expect(frames(fresh)[0]).toEqual({ event: 'ready', id: '42', data: { 'heartbeat-ms': 15_000, resumed: false } })

      const behind = new RecordingSink()
      h.subscribe(alice, behind, { lastEventId: '0' })
      await vi.waitFor(() => { expect(behind.written).toHaveLength(1) })
      expect(frames(behind)[0]).toMatchObject({ id: '42', data: { resumed: false } })

      const failing = hub({ history: { position: async () => 7, read: async () => { throw new Error('database down') } } })
      const unlucky = new RecordingSink()
      failing.subscribe(alice, unlucky, { lastEventId: '3' })
      await vi.waitFor(() => { expect(unlucky.written).toHaveLength(1) })
      expect(frames(unlucky)[0]).toMatchObject({ id: '7', data: { resumed: false } })
    })

    it('live output that waits behind the history counts toward the bound: past it the client is dropped', async () => {
      const source = history([])
      const h = hub({ history: source, maxPendingBytes: 2000 })
      const a = new RecordingSink()
      h.subscribe(alice, a, { lastEventId: '10' })
      await vi.waitFor(() => { expect(source.reads).toBe(1) })
      for (let i = 0; i < 20; i++) h.publish(at(20 + i, 1, datafile(`d${i}`, 'user:alice', { name: 'n'.repeat(100) })))
      expect(a.closed).toBe('slow')
      expect(h.stats).toEqual({ subscribers: 0, dropped: 1 })
      source.release()
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(a.written).toEqual([])
    })

    it('a client that leaves while its history is read gets nothing written', async () => {
      const source = history([at(11, 1, datafile('d1', 'user:alice'))])
      const h = hub({ history: source })
      const a = new RecordingSink()
      const off = h.subscribe(alice, a, { lastEventId: '10' })
      await vi.waitFor(() => { expect(source.reads).toBe(1) })
      off()
      source.release()
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(a.written).toEqual([])
      expect(h.stats.subscribers).toBe(0)
    })
  })
})
