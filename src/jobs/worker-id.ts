import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

/** Names this process in job documents (`worker-id`) and logs: host, pid and a random tag. */
export function createWorkerId (prefix = 'worker'): string {
  return `${prefix}@${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
}
