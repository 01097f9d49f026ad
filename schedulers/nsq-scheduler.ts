import { EventEmitter } from 'node:events'
import { Reader } from 'nsqjs'
import type { Message } from 'nsqjs'
import { JobMessage } from '../models/job-message.js'
import { UnavailableError, ValidationError } from '../src/lib/errors.js'
import { ConsumerRuntime } from './consumer-runtime.js'
import type { InboundMessage } from './consumer-runtime.js'
import { NsqProducer } from './nsq-producer.js'
import type { NsqSchedulerConfig } from './scheduler-config.js'
import { SchedulerClosedError } from './scheduler.js'
import type { Consumer, ConsumerOptions, JobHandler, Scheduler, SchedulerLogger } from './scheduler.js'
import { silentLogger } from './silent-logger.js'

/** Splits `host:port` or `[v6]:port`. The config schema has already checked the shape. */
export function splitHostPort (address: string): { host: string, port: number } {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  return { host, port: Number(address.slice(colon + 1)) }
}

const seconds = (ms: number): number => Math.max(1, Math.round(ms / 1000))

/**
 * Scheduler over NSQ with nsqjs: one long-lived Writer per nsqd for publishing, one Reader per
 * consumer. A message is FINished only after the handler resolves `done`, so a worker that dies
 * mid-job leaves it in flight and nsqd redelivers it after the message timeout.
 */
export class NsqScheduler implements Scheduler {
  readonly kind = 'nsq'
  readonly #config: NsqSchedulerConfig
  readonly #log: SchedulerLogger
  readonly #producers: NsqProducer[]
  readonly #consumers = new Set<ConsumerRuntime>()
  #closing: Promise<void> | undefined

  constructor (config: NsqSchedulerConfig, logger: SchedulerLogger = silentLogger) {
    this.#config = config
    this.#log = logger.child({ scheduler: 'nsq', topic: config.topic })
    this.#producers = config.nsqd.map((address) => new NsqProducer({
      ...splitHostPort(address),
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      connectTimeoutMs: config.connectTimeoutMs,
      publishTimeoutMs: config.publishTimeoutMs,
      clientId: config.clientId,
      logger: this.#log
    }))
  }

  async schedule (msg: JobMessage): Promise<void> {
    if (this.#closing !== undefined) throw new SchedulerClosedError(this.kind)
    const parsed = JobMessage.safeParse(msg)
    if (!parsed.success) throw new ValidationError('not a job message', { issues: parsed.error.issues })
    if (this.#producers.length === 0) throw new UnavailableError('no nsqd address is configured to publish to')
    const body = JSON.stringify(parsed.data)
    const failures: Error[] = []
    // NSQ's model is "publish to your local nsqd"; further addresses are fallbacks, tried in order.
    for (const producer of this.#producers) {
      try {
        await producer.publish(this.#config.topic, body)
        return
      } catch (err) {
        failures.push(err instanceof Error ? err : new Error(String(err)))
        this.#log.warn({ nsqd: producer.address, err }, 'publish to nsqd failed')
      }
    }
    throw new UnavailableError(`could not publish to topic '${this.#config.topic}': ${failures.map((e) => e.message).join('; ')}`, { cause: failures[0] })
  }

  startConsumer (handler: JobHandler, options: ConsumerOptions = {}): Consumer {
    if (this.#closing !== undefined) throw new SchedulerClosedError(this.kind)
    const config = this.#config
    const concurrency = options.concurrency ?? config.concurrency
    const log = this.#log.child({ channel: config.channel })
    let markReady = (): void => {}
    let failReady = (_err: Error): void => {}
    const ready = new Promise<void>((resolve, reject) => { markReady = resolve; failReady = reject })

    const reader = new Reader(config.topic, config.channel, {
      ...(config.lookupd.length > 0 ? { lookupdHTTPAddresses: config.lookupd } : { nsqdTCPAddresses: config.nsqd }),
      maxInFlight: concurrency,
      // nsqjs FINishes messages past maxAttempts by itself right after emitting them, while the
      // handler is still running; attempts are passed to the handler instead (Delivery.maxAttempts).
      maxAttempts: 0,
      messageTimeout: config.msgTimeoutMs,
      heartbeatInterval: seconds(config.heartbeatIntervalMs),
      lookupdPollInterval: seconds(config.discoveryIntervalMs),
      ...(config.clientId === undefined ? {} : { clientId: config.clientId })
    })
    hookSubscribed(reader, markReady)

    const runtime: ConsumerRuntime = new ConsumerRuntime(handler, {
      concurrency,
      maxAttempts: config.maxAttempts > 0 ? config.maxAttempts : undefined,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      logger: log,
      ready,
      // RDY 0 on every connection; nsqjs also stops dialling new connections while paused.
      stopIntake: () => reader.pause(),
      shutdown: async () => {
        // nsqjs writes FIN/REQ on the next tick, and close() destroys the socket right after CLS.
        await new Promise((resolve) => setImmediate(resolve))
        await new Promise((resolve) => setImmediate(resolve))
        reader.close()
        failReady(new Error('consumer closed before it subscribed'))
        this.#consumers.delete(runtime)
        log.info({}, 'nsq consumer closed')
      },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.graceMs === undefined ? {} : { signalGraceMs: options.graceMs })
    })
    this.#consumers.add(runtime)

    reader.on('message', (message: Message) => runtime.accept(this.#inbound(message)))
    reader.on('ready', markReady)
    // Reader is an EventEmitter: an 'error' without a listener would crash the process.
    reader.on('error', (err: Error) => log.warn({ err }, 'nsqd consumer connection error'))
    reader.on('nsqd_connected', (host: string, port: number) => log.info({ nsqd: `${host}:${port}` }, 'nsqd consumer connected'))
    reader.on('nsqd_closed', (host: string, port: number) => {
      if (!runtime.closing) log.warn({ nsqd: `${host}:${port}` }, 'nsqd consumer connection lost')
    })
    reader.connect()
    return runtime
  }

  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    await Promise.all([...this.#consumers].map(async (c) => await c.close({ graceMs: 0 })))
    for (const producer of this.#producers) producer.close()
  }

  #inbound (message: Message): InboundMessage {
    const negotiated: unknown = Reflect.get(message, 'msgTimeout')
    const timeoutMs = typeof negotiated === 'number' && negotiated > 0 ? negotiated : this.#config.msgTimeoutMs
    return {
      id: message.id,
      body: message.body,
      attempts: message.attempts,
      finish: () => message.finish(),
      // backoff=false: nsqjs's backoff pauses the whole Reader, stalling unrelated jobs; the
      // delay on the message itself is the backoff we want.
      requeue: (delayMs) => message.requeue(delayMs, false),
      touch: () => {
        // Past max_msg_timeout nsqd ignores TOUCH and redelivers anyway; don't send useless ones.
        if (message.timeUntilTimeout(true) !== null) message.touch()
      },
      autoTouchMs: this.#config.autoTouch ? Math.max(100, Math.floor(timeoutMs / 3)) : undefined
    }
  }
}

/**
 * Resolves `ready` when any nsqd connection has acknowledged SUB. nsqjs's own Reader 'ready'
 * only fires when that connection is the reader's only one, so with several nsqd it never
 * fires; this wraps the (pinned, unmaintained) nsqjs 0.13 per-connection hook when present.
 */
function hookSubscribed (reader: Reader, onSubscribed: () => void): void {
  const original: unknown = Reflect.get(reader, 'registerConnectionListeners')
  if (typeof original !== 'function') return
  Reflect.set(reader, 'registerConnectionListeners', function (this: Reader, conn: unknown) {
    Reflect.apply(original, this, [conn])
    if (conn instanceof EventEmitter) conn.on('ready', onSubscribed)
  })
}
