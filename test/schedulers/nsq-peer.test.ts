import net from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NsqPeer } from '../helpers/nsq-peer.js'
import { NsqLookupdPeer } from '../helpers/nsqlookupd-peer.js'
import { sleep, waitFor } from './wait-for.js'

// Speaks the wire protocol by hand, so the peer is checked against the spec and not only
// against nsqjs (which tolerates some server mistakes).
interface Frame { type: number, data: Buffer }

class RawClient {
  readonly frames: Frame[] = []
  closed = false
  #buffer = Buffer.alloc(0)
  readonly socket: net.Socket

  private constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      while (this.#buffer.length >= 8) {
        const size = this.#buffer.readInt32BE(0)
        if (this.#buffer.length < 4 + size) break
        this.frames.push({ type: this.#buffer.readInt32BE(4), data: Buffer.from(this.#buffer.subarray(8, 4 + size)) })
        this.#buffer = this.#buffer.subarray(4 + size)
      }
    })
    socket.on('close', () => { this.closed = true })
    socket.on('error', () => {})
  }

  static async connect (peer: NsqPeer, magic = '  V2'): Promise<RawClient> {
    const socket = net.connect(peer.port, peer.host)
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.write(magic)
    return new RawClient(socket)
  }

  send (line: string, body?: Buffer | string): void {
    const parts: Buffer[] = [Buffer.from(`${line}\n`)]
    if (body !== undefined) {
      const b = typeof body === 'string' ? Buffer.from(body) : body
      const size = Buffer.alloc(4)
      size.writeInt32BE(b.length)
      parts.push(size, b)
    }
    this.socket.write(Buffer.concat(parts))
  }

  async next (what = 'a frame', timeoutMs = 2_000, accept: (f: Frame) => boolean = () => true): Promise<Frame> {
    const wanted = (f: Frame): boolean => !isHeartbeat(f) && accept(f)
    await waitFor(() => this.frames.some(wanted), what, timeoutMs)
    const index = this.frames.findIndex(wanted)
    const [frame] = this.frames.splice(index, 1)
    if (frame === undefined) throw new Error('no frame')
    return frame
  }

  async identify (fields: Record<string, unknown> = {}): Promise<Frame> {
    this.send('IDENTIFY', JSON.stringify({ feature_negotiation: true, ...fields }))
    return await this.next('IDENTIFY response')
  }

  async subscribe (topic: string, channel: string, fields: Record<string, unknown> = {}): Promise<void> {
    await this.identify(fields)
    this.send(`SUB ${topic} ${channel}`)
    expect(text(await this.next('SUB response'))).toBe('OK')
  }

  destroy (): void {
    this.socket.destroy()
  }
}

const isHeartbeat = (f: Frame): boolean => f.type === 0 && f.data.toString() === '_heartbeat_'
const text = (f: Frame): string => f.data.toString('utf8')

function decodeMessage (frame: Frame): { timestampNs: bigint, attempts: number, id: string, body: string } {
  expect(frame.type).toBe(2)
  return {
    timestampNs: frame.data.readBigInt64BE(0),
    attempts: frame.data.readUInt16BE(8),
    id: frame.data.subarray(10, 26).toString('latin1'),
    body: frame.data.subarray(26).toString('utf8')
  }
}

describe('NSQ test peer (raw V2 protocol)', () => {
  let peer: NsqPeer
  const clients: RawClient[] = []
  const client = async (magic?: string): Promise<RawClient> => {
    const c = await RawClient.connect(peer, magic)
    clients.push(c)
    return c
  }

  beforeEach(async () => { peer = await NsqPeer.start() })
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy()
    await peer.stop()
  })

  it('negotiates features in IDENTIFY and answers OK without negotiation', async () => {
    const a = await client()
    const reply = JSON.parse(text(await a.identify({ msg_timeout: 5000, heartbeat_interval: 2000, client_id: 'w1', user_agent: 'raw/1' }))) as Record<string, unknown>
    expect(reply).toMatchObject({ max_rdy_count: 2500, msg_timeout: 5000, max_msg_timeout: 900_000, tls_v1: false, snappy: false, deflate: false, version: '1.2.1' })
    expect(peer.clients()[0]).toMatchObject({ clientId: 'w1', userAgent: 'raw/1', heartbeatIntervalMs: 2000, msgTimeoutMs: 5000 })
    const b = await client()
    b.send('IDENTIFY', JSON.stringify({ client_id: 'plain' }))
    expect(text(await b.next())).toBe('OK')
  })

  it('rejects a bad magic, bad JSON and out-of-range IDENTIFY values with fatal errors', async () => {
    const a = await client('  V1')
    expect(text(await a.next())).toBe("E_BAD_PROTOCOL bad protocol magic '  V1'")
    await waitFor(() => a.closed, 'close after bad magic')
    const b = await client()
    b.send('IDENTIFY', '{nope')
    expect(text(await b.next())).toBe('E_BAD_BODY IDENTIFY failed to decode JSON body')
    await waitFor(() => b.closed, 'close after bad IDENTIFY')
    const c = await client()
    c.send('IDENTIFY', JSON.stringify({ msg_timeout: 10 }))
    expect(text(await c.next())).toBe('E_BAD_BODY IDENTIFY msg timeout (10) is invalid')
    const d = await client()
    d.send('BOGUS')
    const frame = await d.next()
    expect(frame.type).toBe(1)
    expect(text(frame)).toBe('E_INVALID invalid command BOGUS')
    await waitFor(() => d.closed, 'close after invalid command')
    expect(peer.counters.errorsSent).toBe(4)
  })

  it('never has more messages in flight to a client than its RDY count', async () => {
    const producer = await client()
    for (const n of [1, 2, 3]) {
      producer.send('PUB jobs', `m${n}`)
      expect(text(await producer.next())).toBe('OK')
    }
    const consumer = await client()
    await consumer.subscribe('jobs', 'work')
    consumer.send('RDY 1')
    const first = decodeMessage(await consumer.next('first message'))
    expect(first).toMatchObject({ attempts: 1, body: 'm1' })
    expect(first.id).toMatch(/^[0-9a-f]{16}$/)
    expect(Number(first.timestampNs / 1_000_000n)).toBeGreaterThan(Date.now() - 5_000)
    await sleep(100)
    expect(consumer.frames.filter((f) => f.type === 2)).toHaveLength(0)
    consumer.send(`FIN ${first.id}`)
    expect(decodeMessage(await consumer.next('second message')).body).toBe('m2')
    consumer.send('RDY 5')
    expect(decodeMessage(await consumer.next('third message')).body).toBe('m3')
    expect(peer.counters.maxClientInFlight).toBe(2)
    expect(peer.counters).toMatchObject({ published: 3, delivered: 3, finished: 1 })
  })

  it('answers FIN/REQ/TOUCH of unknown ids with non-fatal errors and bad ids with fatal ones', async () => {
    const a = await client()
    await a.subscribe('jobs', 'work')
    a.send('FIN 0000000000000099')
    expect(text(await a.next())).toBe('E_FIN_FAILED FIN 0000000000000099 failed ID not in flight')
    a.send('TOUCH 0000000000000099')
    expect(text(await a.next())).toBe('E_TOUCH_FAILED TOUCH 0000000000000099 failed ID not in flight')
    peer.publish('jobs', 'still alive')
    a.send('RDY 1')
    expect(decodeMessage(await a.next()).body).toBe('still alive')
    expect(a.closed).toBe(false)
    a.send('FIN short')
    expect(text(await a.next())).toBe('E_INVALID Invalid Message ID')
    await waitFor(() => a.closed, 'close after a malformed id')
  })

  it('redelivers a REQueued message after its delay with attempts + 1, and rejects a fractional delay', async () => {
    const a = await client()
    await a.subscribe('jobs', 'work')
    a.send('RDY 1')
    peer.publish('jobs', 'again')
    const first = decodeMessage(await a.next())
    const sent = Date.now()
    a.send(`REQ ${first.id} 200`)
    const second = decodeMessage(await a.next('redelivery'))
    expect(Date.now() - sent).toBeGreaterThanOrEqual(190)
    expect(second).toMatchObject({ id: first.id, attempts: 2, body: 'again' })
    expect(peer.counters.requeued).toBe(1)
    a.send(`REQ ${second.id} 1.5`)
    expect(text(await a.next())).toBe('E_INVALID REQ could not parse timeout 1.5')
    await waitFor(() => a.closed, 'close after a bad REQ')
  })

  it('requeues a message whose timeout passes, keeps a touched one, and keeps in-flight messages of a vanished client until they time out', async () => {
    const b = await client()
    await b.subscribe('jobs', 'work', { msg_timeout: 1000 })
    b.send('RDY 1')
    peer.publish('jobs', 'abandoned')
    const abandoned = decodeMessage(await b.next())
    const a = await client()
    await a.subscribe('jobs', 'work', { msg_timeout: 1000 })
    a.send('RDY 2')
    peer.publish('jobs', 'touched')
    const touched = decodeMessage(await a.next())
    expect(touched.body).toBe('touched')
    const touching = setInterval(() => a.send(`TOUCH ${touched.id}`), 300)
    b.destroy()
    await sleep(300)
    expect(peer.inFlight('jobs', 'work')).toBe(2)
    const redelivered = decodeMessage(await a.next('timed-out message', 3_000))
    clearInterval(touching)
    expect(redelivered).toMatchObject({ id: abandoned.id, attempts: 2, body: 'abandoned' })
    expect(peer.counters.timedOut).toBe(1)
    expect(peer.counters.touched).toBeGreaterThanOrEqual(2)
    a.send(`FIN ${touched.id}`)
    a.send(`FIN ${redelivered.id}`)
    await waitFor(() => peer.counters.finished === 2, 'both FINs')
    expect(peer.inFlight()).toBe(0)
  })

  it('sends heartbeats and disconnects a client that never answers them', async () => {
    const a = await client()
    await a.identify({ heartbeat_interval: 1000 })
    await waitFor(() => a.frames.some(isHeartbeat), 'a heartbeat', 2_000)
    await waitFor(() => a.closed, 'disconnect after missed heartbeats', 3_000)
    expect(peer.counters.heartbeatTimeouts).toBe(1)
  })

  it('copies each message to every channel; consumers of one channel share it; MPUB, DPUB and CLS work', async () => {
    const p = await client()
    const c1 = await client()
    const c2 = await client()
    const other = await client()
    await c1.subscribe('jobs', 'work')
    await c2.subscribe('jobs', 'work')
    await other.subscribe('jobs', 'audit')
    for (const c of [c1, c2, other]) c.send('RDY 10')
    const mpub = Buffer.alloc(4 + 2 * 5)
    mpub.writeInt32BE(2, 0)
    mpub.writeInt32BE(1, 4)
    mpub.write('a', 8)
    mpub.writeInt32BE(1, 9)
    mpub.write('b', 13)
    p.send('MPUB jobs', mpub)
    expect(text(await p.next())).toBe('OK')
    p.send('DPUB jobs 150', 'late')
    expect(text(await p.next())).toBe('OK')
    const bodies = (c: RawClient): string[] => c.frames.filter((f) => f.type === 2).map((f) => decodeMessage(f).body)
    await waitFor(() => bodies(c1).length + bodies(c2).length + bodies(other).length === 6, 'six deliveries')
    expect(peer.counters.delivered).toBe(6)
    expect([...bodies(c1), ...bodies(c2)].sort()).toEqual(['a', 'b', 'late'])
    expect(bodies(c1).length).toBeGreaterThan(0)
    expect(bodies(c2).length).toBeGreaterThan(0)
    expect(bodies(other).sort()).toEqual(['a', 'b', 'late'])
    c1.send('CLS')
    expect(text(await c1.next('CLS response', 2_000, (f) => f.type !== 2))).toBe('CLOSE_WAIT')
    peer.publish('jobs', 'after-cls')
    await waitFor(() => bodies(c2).includes('after-cls'), 'delivery to the remaining consumer')
    p.send('PUB bad/topic', 'x')
    expect(text(await p.next())).toBe('E_BAD_TOPIC PUB topic name "bad/topic" is not valid')
  })

  it('keeps messages across a restart on the same port', async () => {
    const port = peer.port
    peer.publish('jobs', 'survivor')
    await peer.restart(20)
    expect(peer.port).toBe(port)
    const a = await client()
    await a.subscribe('jobs', 'work')
    a.send('RDY 1')
    expect(decodeMessage(await a.next()).body).toBe('survivor')
  })

  it('lookupd peer answers /lookup in both response shapes, /ping, and 404 for unknown topics', async () => {
    const lookupd = await NsqLookupdPeer.start({ producers: [peer] })
    try {
      peer.publish('jobs', 'x')
      const fresh = await (await fetch(`${lookupd.url}/lookup?topic=jobs`)).json() as { producers: Array<Record<string, unknown>> }
      expect(fresh.producers).toEqual([expect.objectContaining({ broadcast_address: '127.0.0.1', tcp_port: peer.port })])
      lookupd.legacyResponses = true
      const legacy = await (await fetch(`${lookupd.url}/lookup?topic=jobs`)).json() as { status_code: number, data: { producers: unknown[] } }
      expect(legacy.status_code).toBe(200)
      expect(legacy.data.producers).toHaveLength(1)
      expect((await fetch(`${lookupd.url}/lookup?topic=nope`)).status).toBe(404)
      expect(await (await fetch(`${lookupd.url}/ping`)).text()).toBe('OK')
      expect(lookupd.counters.lookups).toBe(3)
    } finally {
      await lookupd.stop()
    }
  })
})
