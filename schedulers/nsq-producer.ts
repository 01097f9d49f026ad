import { Writer } from 'nsqjs'
import type { SchedulerLogger } from './scheduler.js'

/** One nsqd address plus the connection settings taken from NsqSchedulerConfig. */
export interface NsqProducerOptions {
  host: string
  port: number
  heartbeatIntervalMs: number
  connectTimeoutMs: number
  publishTimeoutMs: number
  clientId: string | undefined
  logger: SchedulerLogger
}

/** A failure talking to one nsqd; `connection` failures may succeed on a fresh connection. */
export class NsqPublishError extends Error {
  readonly address: string
  readonly connection: boolean

  constructor (address: string, message: string, connection: boolean, cause?: unknown) {
    super(`nsqd ${address}: ${message}`, cause === undefined ? undefined : { cause })
    this.name = 'NsqPublishError'
    this.address = address
    this.connection = connection
  }
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// nsqd answers protocol errors with codes like E_BAD_TOPIC; those will fail the same way again.
const isProtocolError = (err: unknown): boolean => /\bE_[A-Z_]+\b/.test(messageOf(err))

/**
 * One long-lived nsqjs Writer to one nsqd, connected on first use and re-dialled after it
 * drops (nsqjs never reconnects a Writer by itself). Publishes are bounded by a timeout.
 */
export class NsqProducer {
  readonly address: string
  readonly #options: NsqProducerOptions
  readonly #log: SchedulerLogger
  #writer: Writer | undefined
  #connecting: Promise<Writer> | undefined
  #closed = false

  constructor (options: NsqProducerOptions) {
    this.#options = options
    this.address = `${options.host}:${options.port}`
    this.#log = options.logger
  }

  async publish (topic: string, body: string): Promise<void> {
    if (this.#closed) throw new NsqPublishError(this.address, 'producer closed', false)
    const writer = await this.#connect()
    try {
      await this.#publishOn(writer, topic, body)
    } catch (err) {
      // A connection that died while idle (nsqd restarted) is only noticed on use: retry once
      // on a fresh one. A duplicate publish is harmless, a lost one is not.
      if (!(err instanceof NsqPublishError) || !err.connection || this.#closed) throw err
      this.#log.debug({ nsqd: this.address, err }, 'publish retried on a new connection')
      await this.#publishOn(await this.#connect(), topic, body)
    }
  }

  close (): void {
    this.#closed = true
    const writer = this.#writer
    this.#writer = undefined
    if (writer !== undefined) this.#closeWriter(writer)
  }

  #connect (): Promise<Writer> {
    if (this.#writer !== undefined && this.#isReady(this.#writer)) return Promise.resolve(this.#writer)
    this.#connecting ??= this.#dial().finally(() => { this.#connecting = undefined })
    return this.#connecting
  }

  #isReady (writer: Writer): boolean {
    return Reflect.get(writer, 'ready') === true
  }

  #dial (): Promise<Writer> {
    const { host, port, heartbeatIntervalMs, connectTimeoutMs, clientId } = this.#options
    return new Promise<Writer>((resolve, reject) => {
      const writer = new Writer(host, port, {
        heartbeatInterval: Math.max(1, Math.round(heartbeatIntervalMs / 1000)),
        ...(clientId === undefined ? {} : { clientId })
      })
      let settled = false
      const fail = (err: NsqPublishError): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        this.#closeWriter(writer)
        reject(err)
      }
      const timer = setTimeout(() => fail(new NsqPublishError(this.address, `no handshake within ${connectTimeoutMs} ms`, true)), connectTimeoutMs)
      writer.on('ready', () => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (this.#closed) {
          this.#closeWriter(writer)
          reject(new NsqPublishError(this.address, 'producer closed', false))
          return
        }
        this.#writer = writer
        this.#log.info({ nsqd: this.address }, 'nsqd producer connected')
        resolve(writer)
      })
      // nsqjs emits 'error' on its EventEmitter; without a listener Node would throw it.
      writer.on('error', (err: Error) => {
        if (!settled) {
          fail(new NsqPublishError(this.address, `unreachable: ${messageOf(err)}`, true, err))
          return
        }
        if (this.#writer === writer) this.#log.warn({ nsqd: this.address, err }, 'nsqd producer connection failed')
        this.#forget(writer)
      })
      writer.on('closed', () => {
        if (!settled) {
          fail(new NsqPublishError(this.address, 'connection closed during handshake', true))
          return
        }
        if (this.#writer === writer) this.#log.info({ nsqd: this.address }, 'nsqd producer connection closed')
        this.#forget(writer)
      })
      writer.connect()
    })
  }

  #publishOn (writer: Writer, topic: string, body: string): Promise<void> {
    const { publishTimeoutMs } = this.#options
    return new Promise<void>((resolve, reject) => {
      let done = false
      const timer = setTimeout(() => {
        if (done) return
        done = true
        // Responses are matched to publishes by order; after a lost one that order is unknowable.
        this.#forget(writer)
        this.#closeWriter(writer)
        reject(new NsqPublishError(this.address, `no response to PUB within ${publishTimeoutMs} ms`, true))
      }, publishTimeoutMs)
      writer.publish(topic, body, (err?: Error) => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (err === undefined || err === null) {
          resolve()
          return
        }
        const connection = !isProtocolError(err)
        if (connection) this.#forget(writer)
        reject(new NsqPublishError(this.address, `publish failed: ${messageOf(err)}`, connection, err))
      })
    })
  }

  #forget (writer: Writer): void {
    if (this.#writer === writer) this.#writer = undefined
  }

  #closeWriter (writer: Writer): void {
    try {
      writer.close()
    } catch {
      // nsqjs throws when the socket was never created (closed before its nextTick connect).
    }
  }
}
