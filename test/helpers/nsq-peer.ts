/**
 * NSQ protocol-level TEST PEER — this is not nsqd. No nsqd binary can be installed on the build
 * machines (no Debian package, no npm bundle on this registry, no NSQ source to build; see
 * ../shared/docs/components-here.md §2), so the NSQ scheduler is tested against this real TCP
 * server, which speaks nsqd's V2 protocol as nsqd 1.2 does for the parts clients use:
 *
 * - framing `[size int32][frame type int32][data]`; message frames carry an 8-byte nanosecond
 *   timestamp, uint16 attempts, a 16-byte ASCII id, then the body;
 * - magic `  V2`, IDENTIFY (feature negotiation; no TLS, snappy or deflate, like an nsqd started
 *   without them), SUB, RDY (a window: never more in flight per client than its RDY), FIN, REQ
 *   (delay in ms, clamped to max-req-timeout), TOUCH, PUB, MPUB, DPUB, NOP, CLS → CLOSE_WAIT,
 *   AUTH → E_AUTH_DISABLED;
 * - heartbeats every negotiated interval and a read deadline of twice that interval;
 * - per-client in-flight ownership, message timeouts that requeue (a client that disconnects
 *   without FIN keeps its messages in flight until they time out, as in nsqd), attempts
 *   incremented on each delivery;
 * - topics with channels: every channel gets a copy of each message, the consumers of one
 *   channel share it; messages published before any channel exists wait in the topic;
 * - error frames with nsqd's codes and texts; E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED
 *   keep the connection, every other error closes it;
 * - a restart keeps queued, in-flight and deferred messages, as nsqd's flush to disk does.
 *
 * Counters let tests observe what a real nsqd would only show in /stats.
 */
import net from 'node:net'

const MAGIC_V2 = '  V2'
const FRAME_RESPONSE = 0
const FRAME_ERROR = 1
const FRAME_MESSAGE = 2
const BODY_COMMANDS = new Set(['IDENTIFY', 'PUB', 'MPUB', 'DPUB', 'AUTH'])
const NON_FATAL = new Set(['E_FIN_FAILED', 'E_REQ_FAILED', 'E_TOUCH_FAILED'])
const NAME = /^[\w.-]+(#ephemeral)?$/
const COMMAND_LOG_LIMIT = 2_000

export interface NsqPeerOptions {
  /** 0 (default) picks a free port. */
  port?: number
  maxRdyCount?: number
  defaultMsgTimeoutMs?: number
  maxMsgTimeoutMs?: number
  defaultHeartbeatIntervalMs?: number
  maxHeartbeatIntervalMs?: number
  maxReqTimeoutMs?: number
  maxMsgSize?: number
  maxBodySize?: number
  version?: string
}

export interface NsqPeerCounters {
  connections: number
  published: number
  delivered: number
  finished: number
  requeued: number
  touched: number
  timedOut: number
  heartbeatsSent: number
  nopsReceived: number
  errorsSent: number
  heartbeatTimeouts: number
  /** Highest number of messages any one client ever had in flight at once. */
  maxClientInFlight: number
}

export interface NsqPeerClientInfo {
  id: number
  clientId: string | undefined
  userAgent: string | undefined
  state: 'init' | 'subscribed' | 'closing'
  rdy: number
  inFlight: number
  topic: string | undefined
  channel: string | undefined
  heartbeatIntervalMs: number
  msgTimeoutMs: number
}

/** An error nsqd would send as an error frame: `<code> <text>`. */
class ProtocolError extends Error {
  readonly code: string

  constructor (code: string, text: string) {
    super(`${code} ${text}`)
    this.code = code
  }

  get fatal (): boolean {
    return !NON_FATAL.has(this.code)
  }
}

interface PeerMessage {
  readonly id: string
  readonly body: Buffer
  readonly timestampNs: bigint
  attempts: number
}

interface InFlight {
  readonly message: PeerMessage
  readonly client: PeerClient
  readonly deliveredAt: number
  timer: NodeJS.Timeout
}

class PeerChannel {
  readonly queue: PeerMessage[] = []
  readonly inFlight = new Map<string, InFlight>()
  readonly deferred = new Map<NodeJS.Timeout, PeerMessage>()
  readonly clients: PeerClient[] = []
  nextClient = 0
  readonly name: string

  constructor (name: string) {
    this.name = name
  }
}

class PeerTopic {
  readonly channels = new Map<string, PeerChannel>()
  readonly backlog: Array<{ message: PeerMessage, deferMs: number }> = []
  readonly name: string

  constructor (name: string) {
    this.name = name
  }
}

class PeerClient {
  buffer: Buffer = Buffer.alloc(0)
  magic = false
  identified = false
  state: 'init' | 'subscribed' | 'closing' = 'init'
  rdy = 0
  inFlight = 0
  topic: PeerTopic | undefined
  channel: PeerChannel | undefined
  heartbeatMs: number
  msgTimeoutMs: number
  heartbeatTimer: NodeJS.Timeout | undefined
  readDeadline: NodeJS.Timeout | undefined
  clientId: string | undefined
  userAgent: string | undefined
  closed = false
  readonly id: number
  readonly socket: net.Socket

  constructor (id: number, socket: net.Socket, heartbeatMs: number, msgTimeoutMs: number) {
    this.id = id
    this.socket = socket
    this.heartbeatMs = heartbeatMs
    this.msgTimeoutMs = msgTimeoutMs
  }
}

interface Command {
  readonly name: string
  readonly params: string[]
  readonly body: Buffer | undefined
}

const validName = (name: string | undefined): name is string =>
  name !== undefined && name.length > 0 && name.length <= 64 && NAME.test(name)

function parseBase10 (text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined
  return Number(text)
}

function encodeFrame (type: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8)
  header.writeInt32BE(data.length + 4, 0)
  header.writeInt32BE(type, 4)
  return Buffer.concat([header, data])
}

function encodeMessage (message: PeerMessage): Buffer {
  const head = Buffer.alloc(26)
  head.writeBigInt64BE(message.timestampNs, 0)
  head.writeUInt16BE(message.attempts, 8)
  head.write(message.id, 10, 16, 'latin1')
  return Buffer.concat([head, message.body])
}

export class NsqPeer {
  readonly host = '127.0.0.1'
  readonly counters: NsqPeerCounters = {
    connections: 0,
    published: 0,
    delivered: 0,
    finished: 0,
    requeued: 0,
    touched: 0,
    timedOut: 0,
    heartbeatsSent: 0,
    nopsReceived: 0,
    errorsSent: 0,
    heartbeatTimeouts: 0,
    maxClientInFlight: 0
  }

  /** Command lines received (bodies omitted), oldest first, bounded. */
  readonly commandLog: string[] = []
  readonly #options: Required<Omit<NsqPeerOptions, 'port'>>
  readonly #topics = new Map<string, PeerTopic>()
  readonly #clients = new Set<PeerClient>()
  #server: net.Server | undefined
  #port = 0
  #nextClientId = 1
  #nextMessageId = 1
  #stopped = false

  private constructor (options: NsqPeerOptions) {
    this.#options = {
      maxRdyCount: options.maxRdyCount ?? 2500,
      defaultMsgTimeoutMs: options.defaultMsgTimeoutMs ?? 60_000,
      maxMsgTimeoutMs: options.maxMsgTimeoutMs ?? 15 * 60_000,
      defaultHeartbeatIntervalMs: options.defaultHeartbeatIntervalMs ?? 30_000,
      maxHeartbeatIntervalMs: options.maxHeartbeatIntervalMs ?? 60_000,
      maxReqTimeoutMs: options.maxReqTimeoutMs ?? 60 * 60_000,
      maxMsgSize: options.maxMsgSize ?? 1024 * 1024,
      maxBodySize: options.maxBodySize ?? 5 * 1024 * 1024,
      version: options.version ?? '1.2.1'
    }
  }

  static async start (options: NsqPeerOptions = {}): Promise<NsqPeer> {
    const peer = new NsqPeer(options)
    await peer.#listen(options.port ?? 0)
    return peer
  }

  get port (): number {
    return this.#port
  }

  /** `host:port`, as nsqjs and the scheduler config take it. */
  get address (): string {
    return `${this.host}:${this.#port}`
  }

  get version (): string {
    return this.#options.version
  }

  get listening (): boolean {
    return this.#server?.listening === true
  }

  get clientCount (): number {
    return this.#clients.size
  }

  hasTopic (name: string): boolean {
    return this.#topics.has(name)
  }

  topicNames (): string[] {
    return [...this.#topics.keys()]
  }

  channelNames (topic: string): string[] {
    return [...(this.#topics.get(topic)?.channels.keys() ?? [])]
  }

  clients (): NsqPeerClientInfo[] {
    return [...this.#clients].map((c) => ({
      id: c.id,
      clientId: c.clientId,
      userAgent: c.userAgent,
      state: c.state,
      rdy: c.rdy,
      inFlight: c.inFlight,
      topic: c.topic?.name,
      channel: c.channel?.name,
      heartbeatIntervalMs: c.heartbeatMs,
      msgTimeoutMs: c.msgTimeoutMs
    }))
  }

  /** Messages in flight on one channel, or on all channels. */
  inFlight (topic?: string, channel?: string): number {
    return this.#channels(topic, channel).reduce((n, ch) => n + ch.inFlight.size, 0)
  }

  /** Messages waiting for delivery (queued + deferred), like nsqd's channel depth. */
  depth (topic?: string, channel?: string): number {
    return this.#channels(topic, channel).reduce((n, ch) => n + ch.queue.length + ch.deferred.size, 0)
  }

  /** Puts a message on a topic as if a producer had published it (for bodies no client would send). */
  publish (topic: string, body: Buffer | string, deferMs = 0): void {
    if (!validName(topic)) throw new Error(`invalid topic ${topic}`)
    this.#put(topic, typeof body === 'string' ? Buffer.from(body) : body, deferMs)
  }

  /** Destroys client sockets without any frame, as a crashed client or a cut cable would. */
  dropClients (filter: (client: NsqPeerClientInfo) => boolean = () => true): number {
    const infos = new Map(this.clients().map((info) => [info.id, info]))
    let dropped = 0
    for (const client of [...this.#clients]) {
      const info = infos.get(client.id)
      if (info === undefined || !filter(info)) continue
      client.socket.destroy()
      this.#removeClient(client)
      dropped++
    }
    return dropped
  }

  /** Stops listening and drops every client, then listens again on the same port; messages survive. */
  async restart (downMs = 0): Promise<void> {
    await this.#closeListener()
    for (const topic of this.#topics.values()) {
      for (const channel of topic.channels.values()) {
        // nsqd's exit flush writes queued, then in-flight, then deferred messages to disk.
        for (const entry of channel.inFlight.values()) {
          clearTimeout(entry.timer)
          channel.queue.push(entry.message)
        }
        channel.inFlight.clear()
        for (const [timer, message] of channel.deferred) {
          clearTimeout(timer)
          channel.queue.push(message)
        }
        channel.deferred.clear()
      }
    }
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs))
    await this.#listen(this.#port)
  }

  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    await this.#closeListener()
    for (const topic of this.#topics.values()) {
      for (const channel of topic.channels.values()) {
        for (const entry of channel.inFlight.values()) clearTimeout(entry.timer)
        for (const timer of channel.deferred.keys()) clearTimeout(timer)
      }
    }
  }

  async #listen (port: number): Promise<void> {
    const server = net.createServer((socket) => this.#accept(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, this.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('peer has no TCP address')
    this.#port = address.port
    this.#server = server
  }

  async #closeListener (): Promise<void> {
    const server = this.#server
    this.#server = undefined
    for (const client of [...this.#clients]) {
      client.socket.destroy()
      this.#removeClient(client)
    }
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  #channels (topic?: string, channel?: string): PeerChannel[] {
    const topics = topic === undefined ? [...this.#topics.values()] : [this.#topics.get(topic)].filter((t) => t !== undefined)
    return topics.flatMap((t) => channel === undefined ? [...t.channels.values()] : [t.channels.get(channel)].filter((c) => c !== undefined))
  }

  #accept (socket: net.Socket): void {
    const client = new PeerClient(this.#nextClientId++, socket, this.#options.defaultHeartbeatIntervalMs, this.#options.defaultMsgTimeoutMs)
    this.#clients.add(client)
    this.counters.connections++
    socket.setNoDelay(true)
    // A client that vanishes mid-write (crash tests) surfaces as ECONNRESET: expected here.
    socket.on('error', () => {})
    socket.on('close', () => this.#removeClient(client))
    socket.on('data', (chunk: Buffer) => this.#onData(client, chunk))
    this.#startHeartbeat(client)
    this.#armReadDeadline(client)
  }

  #removeClient (client: PeerClient): void {
    if (!this.#clients.delete(client)) return
    client.closed = true
    clearInterval(client.heartbeatTimer)
    clearTimeout(client.readDeadline)
    const channel = client.channel
    if (channel !== undefined) {
      const index = channel.clients.indexOf(client)
      if (index !== -1) channel.clients.splice(index, 1)
      // Like nsqd's Channel.RemoveClient: its in-flight messages stay until they time out.
    }
  }

  #startHeartbeat (client: PeerClient): void {
    clearInterval(client.heartbeatTimer)
    client.heartbeatTimer = undefined
    if (client.heartbeatMs <= 0) return
    client.heartbeatTimer = setInterval(() => {
      this.counters.heartbeatsSent++
      this.#send(client, FRAME_RESPONSE, Buffer.from('_heartbeat_'))
    }, client.heartbeatMs)
  }

  // nsqd sets a read deadline of twice the heartbeat interval before every read: a client that
  // neither sends commands nor answers heartbeats with NOP is disconnected.
  #armReadDeadline (client: PeerClient): void {
    clearTimeout(client.readDeadline)
    client.readDeadline = undefined
    if (client.heartbeatMs <= 0) return
    client.readDeadline = setTimeout(() => {
      this.counters.heartbeatTimeouts++
      client.socket.destroy()
      this.#removeClient(client)
    }, client.heartbeatMs * 2)
  }

  #onData (client: PeerClient, chunk: Buffer): void {
    if (client.closed) return
    client.buffer = client.buffer.length === 0 ? chunk : Buffer.concat([client.buffer, chunk])
    this.#armReadDeadline(client)
    if (!client.magic) {
      if (client.buffer.length < 4) return
      const magic = client.buffer.subarray(0, 4).toString('latin1')
      client.buffer = client.buffer.subarray(4)
      if (magic !== MAGIC_V2) {
        this.#fail(client, new ProtocolError('E_BAD_PROTOCOL', `bad protocol magic '${magic}'`))
        return
      }
      client.magic = true
    }
    while (!client.closed) {
      let command: Command | undefined
      try {
        command = this.#nextCommand(client)
        if (command === undefined) return
        this.#exec(client, command)
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err
        this.#fail(client, err)
      }
    }
  }

  #nextCommand (client: PeerClient): Command | undefined {
    const buffer = client.buffer
    const newline = buffer.indexOf(0x0a)
    if (newline === -1) {
      if (buffer.length > 64 * 1024) throw new ProtocolError('E_INVALID', 'command line too long')
      return undefined
    }
    let line = buffer.subarray(0, newline).toString('utf8')
    if (line.endsWith('\r')) line = line.slice(0, -1)
    const params = line.split(' ')
    const name = params[0] ?? ''
    let body: Buffer | undefined
    if (BODY_COMMANDS.has(name)) {
      if (buffer.length < newline + 5) return undefined
      const size = buffer.readInt32BE(newline + 1)
      this.#checkBodySize(name, size)
      if (buffer.length < newline + 5 + size) return undefined
      body = Buffer.from(buffer.subarray(newline + 5, newline + 5 + size))
      client.buffer = buffer.subarray(newline + 5 + size)
    } else {
      client.buffer = buffer.subarray(newline + 1)
    }
    this.commandLog.push(line)
    if (this.commandLog.length > COMMAND_LOG_LIMIT) this.commandLog.splice(0, this.commandLog.length - COMMAND_LOG_LIMIT)
    return { name, params, body }
  }

  #checkBodySize (name: string, size: number): void {
    const { maxMsgSize, maxBodySize } = this.#options
    if (name === 'PUB' || name === 'DPUB') {
      if (size <= 0) throw new ProtocolError('E_BAD_MESSAGE', `${name} invalid message body size ${size}`)
      if (size > maxMsgSize) throw new ProtocolError('E_BAD_MESSAGE', `${name} message too big ${size} > ${maxMsgSize}`)
      return
    }
    if (size <= 0) throw new ProtocolError('E_BAD_BODY', `${name} invalid body size ${size}`)
    if (size > maxBodySize) throw new ProtocolError('E_BAD_BODY', `${name} body too big ${size} > ${maxBodySize}`)
  }

  #exec (client: PeerClient, command: Command): void {
    switch (command.name) {
      case 'IDENTIFY': return this.#identify(client, command.body ?? Buffer.alloc(0))
      case 'SUB': return this.#sub(client, command.params)
      case 'RDY': return this.#rdy(client, command.params)
      case 'FIN': return this.#fin(client, command.params)
      case 'REQ': return this.#req(client, command.params)
      case 'TOUCH': return this.#touch(client, command.params)
      case 'PUB': return this.#pub(client, command.params, command.body ?? Buffer.alloc(0))
      case 'MPUB': return this.#mpub(client, command.params, command.body ?? Buffer.alloc(0))
      case 'DPUB': return this.#dpub(client, command.params, command.body ?? Buffer.alloc(0))
      case 'NOP':
        this.counters.nopsReceived++
        return
      case 'CLS': return this.#cls(client)
      case 'AUTH': throw new ProtocolError('E_AUTH_DISABLED', 'AUTH disabled')
      default: throw new ProtocolError('E_INVALID', `invalid command ${command.name}`)
    }
  }

  #identify (client: PeerClient, body: Buffer): void {
    if (client.state !== 'init' || client.identified) throw new ProtocolError('E_INVALID', 'cannot IDENTIFY in current state')
    let data: unknown
    try {
      data = JSON.parse(body.toString('utf8'))
    } catch {
      throw new ProtocolError('E_BAD_BODY', 'IDENTIFY failed to decode JSON body')
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ProtocolError('E_BAD_BODY', 'IDENTIFY failed to decode JSON body')
    const field = (key: string): unknown => Reflect.get(data, key)
    const number = (key: string): number => {
      const value = field(key)
      if (value === undefined || value === null) return 0
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new ProtocolError('E_BAD_BODY', 'IDENTIFY failed to decode JSON body')
      return value
    }
    const heartbeat = number('heartbeat_interval')
    if (heartbeat === -1) client.heartbeatMs = 0
    else if (heartbeat >= 1000 && heartbeat <= this.#options.maxHeartbeatIntervalMs) client.heartbeatMs = heartbeat
    else if (heartbeat !== 0) throw new ProtocolError('E_BAD_BODY', `IDENTIFY heartbeat interval (${heartbeat}) is invalid`)
    const msgTimeout = number('msg_timeout')
    if (msgTimeout >= 1000 && msgTimeout <= this.#options.maxMsgTimeoutMs) client.msgTimeoutMs = msgTimeout
    else if (msgTimeout !== 0) throw new ProtocolError('E_BAD_BODY', `IDENTIFY msg timeout (${msgTimeout}) is invalid`)
    const clientId = field('client_id')
    const userAgent = field('user_agent')
    client.clientId = typeof clientId === 'string' ? clientId : undefined
    client.userAgent = typeof userAgent === 'string' ? userAgent : undefined
    client.identified = true
    this.#startHeartbeat(client)
    this.#armReadDeadline(client)
    if (field('feature_negotiation') !== true) {
      this.#send(client, FRAME_RESPONSE, Buffer.from('OK'))
      return
    }
    this.#send(client, FRAME_RESPONSE, Buffer.from(JSON.stringify({
      max_rdy_count: this.#options.maxRdyCount,
      version: this.#options.version,
      max_msg_timeout: this.#options.maxMsgTimeoutMs,
      msg_timeout: client.msgTimeoutMs,
      tls_v1: false,
      deflate: false,
      deflate_level: 6,
      max_deflate_level: 6,
      snappy: false,
      sample_rate: 0,
      auth_required: false,
      output_buffer_size: 16384,
      output_buffer_timeout: 250
    })))
  }

  #sub (client: PeerClient, params: string[]): void {
    if (client.state !== 'init') throw new ProtocolError('E_INVALID', 'cannot SUB in current state')
    if (client.heartbeatMs <= 0) throw new ProtocolError('E_INVALID', 'cannot SUB with heartbeats disabled')
    if (params.length < 3) throw new ProtocolError('E_INVALID', 'SUB insufficient number of parameters')
    const [, topicName, channelName] = params
    if (!validName(topicName)) throw new ProtocolError('E_BAD_TOPIC', `SUB topic name ${JSON.stringify(topicName)} is not valid`)
    if (!validName(channelName)) throw new ProtocolError('E_BAD_CHANNEL', `SUB channel name ${JSON.stringify(channelName)} is not valid`)
    const topic = this.#topic(topicName)
    const channel = this.#channel(topic, channelName)
    channel.clients.push(client)
    client.topic = topic
    client.channel = channel
    client.state = 'subscribed'
    this.#send(client, FRAME_RESPONSE, Buffer.from('OK'))
  }

  #rdy (client: PeerClient, params: string[]): void {
    if (client.state === 'closing') return
    if (client.state !== 'subscribed') throw new ProtocolError('E_INVALID', 'cannot RDY in current state')
    const count = params.length > 1 ? parseBase10(params[1]) : 1
    if (count === undefined) throw new ProtocolError('E_INVALID', `RDY could not parse count ${params[1] ?? ''}`)
    if (count < 0 || count > this.#options.maxRdyCount) throw new ProtocolError('E_INVALID', `RDY count ${count} out of range 0-${this.#options.maxRdyCount}`)
    client.rdy = count
    if (client.channel !== undefined) this.#pump(client.channel)
  }

  #ownedMessage (client: PeerClient, params: string[], command: string, failCode: string): { channel: PeerChannel, entry: InFlight } {
    if (client.state !== 'subscribed' && client.state !== 'closing') throw new ProtocolError('E_INVALID', `cannot ${command} in current state`)
    if (params.length < (command === 'REQ' ? 3 : 2)) throw new ProtocolError('E_INVALID', `${command} insufficient number of params`)
    const id = params[1] ?? ''
    if (Buffer.byteLength(id) !== 16) throw new ProtocolError('E_INVALID', 'Invalid Message ID')
    const channel = client.channel
    const entry = channel?.inFlight.get(id)
    if (channel === undefined || entry === undefined) throw new ProtocolError(failCode, `${command} ${id} failed ID not in flight`)
    if (entry.client !== client) throw new ProtocolError(failCode, `${command} ${id} failed client does not own message`)
    return { channel, entry }
  }

  #fin (client: PeerClient, params: string[]): void {
    const { channel, entry } = this.#ownedMessage(client, params, 'FIN', 'E_FIN_FAILED')
    clearTimeout(entry.timer)
    channel.inFlight.delete(entry.message.id)
    client.inFlight--
    this.counters.finished++
    this.#pump(channel)
  }

  #req (client: PeerClient, params: string[]): void {
    const timeout = parseBase10(params[2])
    const { channel, entry } = this.#ownedMessage(client, params, 'REQ', 'E_REQ_FAILED')
    if (timeout === undefined) throw new ProtocolError('E_INVALID', `REQ could not parse timeout ${params[2] ?? ''}`)
    // nsqd ≥ 1.0 clamps an out-of-range REQ timeout instead of failing it.
    const delayMs = Math.min(Math.max(timeout, 0), this.#options.maxReqTimeoutMs)
    clearTimeout(entry.timer)
    channel.inFlight.delete(entry.message.id)
    client.inFlight--
    this.counters.requeued++
    if (delayMs === 0) channel.queue.push(entry.message)
    else this.#defer(channel, entry.message, delayMs)
    this.#pump(channel)
  }

  #touch (client: PeerClient, params: string[]): void {
    const { channel, entry } = this.#ownedMessage(client, params, 'TOUCH', 'E_TOUCH_FAILED')
    const now = Date.now()
    // A touch resets the timeout to the client's msg_timeout, never past max_msg_timeout from delivery.
    const deadline = Math.min(now + client.msgTimeoutMs, entry.deliveredAt + this.#options.maxMsgTimeoutMs)
    clearTimeout(entry.timer)
    entry.timer = setTimeout(() => this.#timeout(channel, entry.message.id), Math.max(0, deadline - now))
    this.counters.touched++
  }

  #pub (client: PeerClient, params: string[], body: Buffer): void {
    const topic = this.#publishTopic(params, 'PUB')
    this.#put(topic, body, 0)
    this.#send(client, FRAME_RESPONSE, Buffer.from('OK'))
  }

  #mpub (client: PeerClient, params: string[], body: Buffer): void {
    const topic = this.#publishTopic(params, 'MPUB')
    if (body.length < 4) throw new ProtocolError('E_BAD_BODY', 'MPUB failed to read message count')
    const count = body.readInt32BE(0)
    if (count <= 0 || count > Math.floor((body.length - 4) / 5)) throw new ProtocolError('E_BAD_BODY', `MPUB invalid message count ${count}`)
    const bodies: Buffer[] = []
    let offset = 4
    for (let i = 0; i < count; i++) {
      if (offset + 4 > body.length) throw new ProtocolError('E_BAD_MESSAGE', 'MPUB failed to read message body size')
      const size = body.readInt32BE(offset)
      if (size <= 0) throw new ProtocolError('E_BAD_MESSAGE', `MPUB invalid message(${i}) body size ${size}`)
      if (size > this.#options.maxMsgSize) throw new ProtocolError('E_BAD_MESSAGE', `MPUB message too big ${size} > ${this.#options.maxMsgSize}`)
      if (offset + 4 + size > body.length) throw new ProtocolError('E_BAD_MESSAGE', 'MPUB failed to read message body')
      bodies.push(Buffer.from(body.subarray(offset + 4, offset + 4 + size)))
      offset += 4 + size
    }
    // All validated first: nsqd queues all of an MPUB or none of it.
    for (const b of bodies) this.#put(topic, b, 0)
    this.#send(client, FRAME_RESPONSE, Buffer.from('OK'))
  }

  #dpub (client: PeerClient, params: string[], body: Buffer): void {
    if (params.length < 3) throw new ProtocolError('E_INVALID', 'DPUB insufficient number of parameters')
    const topic = this.#publishTopic(params, 'DPUB')
    const timeout = parseBase10(params[2])
    if (timeout === undefined) throw new ProtocolError('E_INVALID', `DPUB could not parse timeout ${params[2] ?? ''}`)
    if (timeout < 0 || timeout > this.#options.maxReqTimeoutMs) throw new ProtocolError('E_INVALID', `DPUB timeout ${timeout} out of range 0-${this.#options.maxReqTimeoutMs}`)
    this.#put(topic, body, timeout)
    this.#send(client, FRAME_RESPONSE, Buffer.from('OK'))
  }

  #cls (client: PeerClient): void {
    if (client.state !== 'subscribed') throw new ProtocolError('E_INVALID', 'cannot CLS in current state')
    client.state = 'closing'
    this.#send(client, FRAME_RESPONSE, Buffer.from('CLOSE_WAIT'))
  }

  #publishTopic (params: string[], command: string): string {
    if (params.length < 2) throw new ProtocolError('E_INVALID', `${command} insufficient number of parameters`)
    const topic = params[1]
    if (!validName(topic)) throw new ProtocolError('E_BAD_TOPIC', `${command} topic name ${JSON.stringify(topic)} is not valid`)
    return topic
  }

  #topic (name: string): PeerTopic {
    let topic = this.#topics.get(name)
    if (topic === undefined) {
      topic = new PeerTopic(name)
      this.#topics.set(name, topic)
    }
    return topic
  }

  #channel (topic: PeerTopic, name: string): PeerChannel {
    let channel = topic.channels.get(name)
    if (channel === undefined) {
      channel = new PeerChannel(name)
      topic.channels.set(name, channel)
      // Messages that arrived while the topic had no channel go to the first channel(s) created.
      const backlog = topic.backlog.splice(0)
      for (const { message, deferMs } of backlog) this.#enqueue(channel, { ...message }, deferMs)
      this.#pump(channel)
    }
    return channel
  }

  #put (topicName: string, body: Buffer, deferMs: number): void {
    const topic = this.#topic(topicName)
    const message: PeerMessage = {
      id: (this.#nextMessageId++).toString(16).padStart(16, '0'),
      body,
      timestampNs: BigInt(Date.now()) * 1_000_000n,
      attempts: 0
    }
    this.counters.published++
    if (topic.channels.size === 0) {
      topic.backlog.push({ message, deferMs })
      return
    }
    for (const channel of topic.channels.values()) {
      this.#enqueue(channel, { ...message }, deferMs)
      this.#pump(channel)
    }
  }

  #enqueue (channel: PeerChannel, message: PeerMessage, deferMs: number): void {
    if (deferMs > 0) this.#defer(channel, message, deferMs)
    else channel.queue.push(message)
  }

  #defer (channel: PeerChannel, message: PeerMessage, delayMs: number): void {
    const timer: NodeJS.Timeout = setTimeout(() => {
      channel.deferred.delete(timer)
      channel.queue.push(message)
      this.#pump(channel)
    }, delayMs)
    channel.deferred.set(timer, message)
  }

  #timeout (channel: PeerChannel, id: string): void {
    const entry = channel.inFlight.get(id)
    if (entry === undefined) return
    channel.inFlight.delete(id)
    entry.client.inFlight--
    this.counters.timedOut++
    channel.queue.push(entry.message)
    this.#pump(channel)
  }

  #pump (channel: PeerChannel): void {
    while (channel.queue.length > 0) {
      const client = this.#readyClient(channel)
      if (client === undefined) return
      const message = channel.queue.shift()
      if (message === undefined) return
      message.attempts = Math.min(message.attempts + 1, 0xffff)
      const entry: InFlight = {
        message,
        client,
        deliveredAt: Date.now(),
        timer: setTimeout(() => this.#timeout(channel, message.id), client.msgTimeoutMs)
      }
      channel.inFlight.set(message.id, entry)
      client.inFlight++
      this.counters.maxClientInFlight = Math.max(this.counters.maxClientInFlight, client.inFlight)
      this.counters.delivered++
      this.#send(client, FRAME_MESSAGE, encodeMessage(message))
    }
  }

  // RDY is a window, as in nsqd ≥ 0.3: a client may hold up to RDY unanswered messages.
  #readyClient (channel: PeerChannel): PeerClient | undefined {
    const n = channel.clients.length
    for (let i = 0; i < n; i++) {
      const client = channel.clients[(channel.nextClient + i) % n]
      if (client !== undefined && !client.closed && client.state === 'subscribed' && client.inFlight < client.rdy) {
        channel.nextClient = (channel.nextClient + i + 1) % n
        return client
      }
    }
    return undefined
  }

  #send (client: PeerClient, type: number, data: Buffer): void {
    if (client.closed || client.socket.destroyed) return
    client.socket.write(encodeFrame(type, data))
  }

  #fail (client: PeerClient, err: ProtocolError): void {
    this.counters.errorsSent++
    this.#send(client, FRAME_ERROR, Buffer.from(err.message))
    if (!err.fatal) return
    // Fatal errors close the connection once the error frame is flushed, as nsqd's IOLoop does.
    this.#removeClient(client)
    client.socket.end(() => client.socket.destroy())
  }
}
