/**
 * Whether a process with this pid exists and is ours to signal. Signal 0 checks without
 * sending anything: ESRCH means it is gone, EPERM that it belongs to another user (so it is not
 * one of ours either).
 */
export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
