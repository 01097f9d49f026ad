import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** s3rver's accepted key pair (it checks that the access key exists, not the V4 signature). */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER'
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER'

export interface S3TestServer {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  /** Requests received so far (tests use it to prove that no I/O happened). */
  requests: () => Promise<number>
  close: () => Promise<void>
}

const CHILD = fileURLToPath(new URL('./s3-server-process.ts', import.meta.url))

/**
 * Starts s3rver on 127.0.0.1 (random port) over a temp directory, with `buckets` created.
 * It runs in a child process so that the test process's memory reflects only the client.
 */
export async function startS3Server (buckets: string[]): Promise<S3TestServer> {
  const directory = await mkdtemp(path.join(tmpdir(), 'et-s3rver-'))
  const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  try {
    const started = await ask(child, { type: 'start', directory, buckets }, 'port')
    return {
      endpoint: `http://127.0.0.1:${String(started.port)}`,
      requests: async () => Number((await ask(child, { type: 'requests' }, 'requests')).requests),
      close: async () => {
        await stop(child)
        await rm(directory, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await stop(child)
    await rm(directory, { recursive: true, force: true })
    throw err
  }
}

async function ask (child: ChildProcess, message: Record<string, unknown>, field: string): Promise<Record<string, unknown>> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`s3rver child did not answer ${String(message.type)} within 20 s`)), 20_000)
    const onMessage = (answer: unknown): void => {
      if (typeof answer !== 'object' || answer === null) return
      const error: unknown = Reflect.get(answer, 'error')
      if (typeof error === 'string') finish(new Error(`s3rver failed to start: ${error}`))
      else if (field in answer) finish(undefined, answer as Record<string, unknown>)
    }
    const onExit = (code: number | null): void => finish(new Error(`s3rver child exited (${String(code)})`))
    function finish (err: Error | undefined, answer?: Record<string, unknown>): void {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (err !== undefined) reject(err)
      else resolve(answer ?? {})
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.send(message)
  })
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}
