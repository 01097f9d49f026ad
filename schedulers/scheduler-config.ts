import { z } from 'zod'

// nsqd's own rule for topic and channel names (protocol.IsValidTopicName): 1-64 of [.a-zA-Z0-9_-],
// optionally suffixed with #ephemeral.
const NsqName = z.string().max(64).regex(/^[\w.-]+(#ephemeral)?$/, 'expected an NSQ name: 1-64 of [.a-zA-Z0-9_-]')

const HostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/, 'expected host:port')

// nsqjs accepts lookupd addresses as bare host:port or as http(s) URLs (a path other than / replaces /lookup).
const LookupdAddress = z.union([HostPort, z.url({ protocol: /^https?$/ })])

const RetryFields = {
  /** First backoff after a handler throws; doubles on each further attempt. */
  retryBaseMs: z.number().int().min(0).default(1_000),
  /** Backoff ceiling; nsqd itself caps REQ delays at its max-req-timeout (1 h by default). */
  retryMaxMs: z.number().int().min(0).max(3_600_000).default(60_000),
  /** Attempts after which the handler is told it is past the limit (0 = no limit). Never enforced here. */
  maxAttempts: z.number().int().min(0).default(0)
}

export const InProcessSchedulerConfig = z.object({
  kind: z.literal('in-process'),
  concurrency: z.number().int().min(1).max(1024).default(1),
  ...RetryFields
}).strict()
export type InProcessSchedulerConfig = z.infer<typeof InProcessSchedulerConfig>

export const NsqSchedulerConfig = z.object({
  kind: z.literal('nsq'),
  /** nsqd TCP addresses: producers publish to the first that answers; consumers connect directly when no lookupd is given. */
  nsqd: z.array(HostPort).default(['127.0.0.1:4150']),
  /** nsqlookupd HTTP addresses; when given, consumers discover nsqd through them. */
  lookupd: z.array(LookupdAddress).default([]),
  topic: NsqName.default('elastic-thought'),
  channel: NsqName.default('elastic-thought-worker'),
  /** Handlers at once per consumer, sent as the Reader's max-in-flight (RDY). */
  concurrency: z.number().int().min(1).max(2500).default(1),
  /** Negotiated with nsqd in IDENTIFY; nsqd accepts 1000 ms up to its max-msg-timeout (15 min by default). */
  msgTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
  /** nsqd accepts 1000 ms up to its max-heartbeat-interval (60 s); nsqjs only sends whole seconds. */
  heartbeatIntervalMs: z.number().int().min(1_000).max(60_000).default(30_000),
  /** How often a consumer polls lookupd and redials lost nsqd connections; nsqjs only takes whole seconds. */
  discoveryIntervalMs: z.number().int().min(1_000).default(15_000),
  /** TOUCH running messages at a third of the negotiated msg timeout so long handlers are not redelivered. */
  autoTouch: z.boolean().default(true),
  connectTimeoutMs: z.number().int().min(1).default(5_000),
  publishTimeoutMs: z.number().int().min(1).default(10_000),
  /** Sent as IDENTIFY client_id; defaults to the short host name. */
  clientId: z.string().min(1).max(255).optional(),
  ...RetryFields,
  maxAttempts: RetryFields.maxAttempts.default(5)
}).strict().refine((c) => c.nsqd.length + c.lookupd.length > 0, {
  message: 'give at least one nsqd or nsqlookupd address',
  path: ['nsqd']
})
export type NsqSchedulerConfig = z.infer<typeof NsqSchedulerConfig>

/** Which scheduler to run and how; `kind` picks the implementation in `createScheduler()`. */
export const SchedulerConfig = z.discriminatedUnion('kind', [InProcessSchedulerConfig, NsqSchedulerConfig])
export type SchedulerConfig = z.infer<typeof SchedulerConfig>
export type SchedulerConfigInput = z.input<typeof SchedulerConfig>
