/** The two output streams of a Caffe process, stored per job. */
export const LOG_STREAMS = ['stdout', 'stderr'] as const
export type LogStream = (typeof LOG_STREAMS)[number]

/**
 * Where a job's logs live in the blob store. While a job runs, its output is stored as
 * numbered chunk objects (no backend can append), `<job-id>/logs/<stream>/<attempt>-<seq>`,
 * both numbers zero-padded so that the store's code-point order is the byte order of the log
 * and every attempt of a retried job keeps its own numbers. At the end the concatenation of
 * all chunks is also stored whole as `<job-id>/<stream>` (the original's key), so a byte
 * offset means the same thing in the chunks and in the whole file.
 */
export function logChunkPrefix (jobId: string, stream: LogStream): string {
  return `${jobId}/logs/${stream}/`
}

export function logChunkKey (jobId: string, stream: LogStream, attempt: number, seq: number): string {
  return `${logChunkPrefix(jobId, stream)}${String(attempt).padStart(3, '0')}-${String(seq).padStart(6, '0')}`
}

export function wholeLogKey (jobId: string, stream: LogStream): string {
  return `${jobId}/${stream}`
}

/** Where training snapshots are stored: `<job-id>/snapshots/<file name>`. */
export function snapshotKey (jobId: string, fileName: string): string {
  return `${jobId}/snapshots/${fileName}`
}

export function trainedModelKey (jobId: string): string {
  return `${jobId}/trained.caffemodel`
}
