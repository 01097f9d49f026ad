import { describe, expect, it } from 'vitest'
import { UnavailableError } from '../../src/lib/errors.js'
import { PasswordHasher } from '../../src/services/password.js'

describe('PasswordHasher', () => {
  it('verifies what it hashed, and nothing else', async () => {
    const hasher = new PasswordHasher()
    const stored = await hasher.hash('correct horse battery')
    expect(await hasher.verify('correct horse battery', stored)).toBe(true)
    expect(await hasher.verify('correct horse batterx', stored)).toBe(false)
  })

  it('runs at most `concurrency` scrypts at once, queues the rest, and refuses past the queue bound with a 503', async () => {
    const hasher = new PasswordHasher({ concurrency: 2, maxWaiting: 3 })
    const stored = await hasher.hash('some password 1')
    let most = 0
    const watch = setInterval(() => { most = Math.max(most, hasher.stats.running) }, 1)
    const finished: number[] = []
    const checks = Array.from({ length: 5 }, async (_, i) => { await hasher.verify('some password 1', stored); finished.push(i) })
    expect(hasher.stats).toEqual({ running: 2, waiting: 3 })
    // A sixth has no room to wait: refused at once, without running.
    await expect(hasher.verify('some password 1', stored)).rejects.toBeInstanceOf(UnavailableError)
    await Promise.all(checks)
    clearInterval(watch)
    expect(most).toBe(2)
    expect(finished.sort()).toEqual([0, 1, 2, 3, 4])
    expect(hasher.stats).toEqual({ running: 0, waiting: 0 })
  })
})
