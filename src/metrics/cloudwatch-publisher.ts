import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch'
import type { MetricDatum } from '@aws-sdk/client-cloudwatch'
import { jobTypes } from '../../models/documents.js'
import { queueDepth } from './job-counts.js'
import type { JobCounts } from './job-counts.js'

/** The namespace and metric the deployment's CloudWatch alarms watch (cloudformation/). */
export const CLOUDWATCH_NAMESPACE = 'ElasticThought'
export const QUEUE_DEPTH_METRIC = 'QueueDepth'

export interface CloudWatchPublisherOptions {
  /** Value of the `Cluster` dimension: one namespace serves several deployments. */
  cluster: string
  /** Default: the SDK's (AWS_REGION, the shared config file). */
  region?: string | undefined
  /** Another endpoint than CloudWatch's own (tests, VPC endpoints). */
  endpoint?: string | undefined
  /** Keys from the command's environment; without them the SDK's default chain (files, instance profile). */
  credentials?: { accessKeyId: string, secretAccessKey: string, sessionToken?: string | undefined } | undefined
}

/**
 * The data points for one set of counts: `QueueDepth` (jobs pending or processing) by
 * `Cluster` — what the scaling alarms watch — and by `Cluster` + `JobType`, plus
 * `PendingJobs` and `ProcessingJobs` by `Cluster`. CloudWatch treats each dimension
 * combination as its own metric, so the extra ones leave the alarms' metric untouched.
 */
export function queueDepthData (counts: JobCounts, cluster: string, at: Date): MetricDatum[] {
  const datum = (name: string, value: number, dimensions: Record<string, string>): MetricDatum => ({
    MetricName: name,
    Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
    Timestamp: at,
    Value: value,
    Unit: 'Count'
  })
  return [
    datum(QUEUE_DEPTH_METRIC, queueDepth(counts), { Cluster: cluster }),
    ...jobTypes.map((type) => datum(QUEUE_DEPTH_METRIC, queueDepth(counts, [type]), { Cluster: cluster, JobType: type })),
    datum('PendingJobs', jobTypes.reduce((n, type) => n + counts[type].pending, 0), { Cluster: cluster }),
    datum('ProcessingJobs', jobTypes.reduce((n, type) => n + counts[type].processing, 0), { Cluster: cluster })
  ]
}

/**
 * Puts queue-depth data points into CloudWatch with PutMetricData. Credentials are the given
 * keys or the SDK's default chain (shared files, the EC2 instance profile). `publish()`
 * rejects with the SDK's error; `close()` releases the client's sockets.
 */
export class CloudWatchPublisher {
  readonly #client: CloudWatchClient
  readonly #cluster: string

  constructor (options: CloudWatchPublisherOptions) {
    this.#cluster = options.cluster
    this.#client = new CloudWatchClient({
      ...(options.region === undefined ? {} : { region: options.region }),
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      // A metric that arrives late is worth less than the next one: do not pile up retries.
      maxAttempts: 2
    })
  }

  async publish (counts: JobCounts, at = new Date()): Promise<MetricDatum[]> {
    const data = queueDepthData(counts, this.#cluster, at)
    await this.#client.send(new PutMetricDataCommand({ Namespace: CLOUDWATCH_NAMESPACE, MetricData: data }))
    return data
  }

  close (): void {
    this.#client.destroy()
  }
}
