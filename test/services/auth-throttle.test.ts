import { describe, expect, it } from 'vitest'
import { TooManyRequestsError } from '../../src/lib/errors.js'
import { AuthThrottle, SignUpLimit } from '../../src/services/auth-throttle.js'

/** A throttle on a clock the test moves. */
function throttle (options: ConstructorParameters<typeof AuthThrottle>[0] = {}): { t: AuthThrottle, advance: (ms: number) => void } {
  let now = 1_000_000
  return { t: new AuthThrottle({ windowMs: 60_000, maxPerAccount: 3, maxPerClient: 5, ...options, now: () => now }), advance: (ms) => { now += ms } }
}

const refusal = (fn: () => void): TooManyRequestsError | null => {
  try {
    fn()
    return null
  } catch (err) {
    expect(err).toBeInstanceOf(TooManyRequestsError)
    return err as TooManyRequestsError
  }
}

describe('AuthThrottle', () => {
  it('refuses an account after its failures from one client, until the window ends, with the time left', () => {
    const { t, advance } = throttle()
    for (let i = 0; i < 3; i++) {
      t.check('10.0.0.1', 'alice')
      t.failed('10.0.0.1', 'alice')
    }
    advance(20_000)
    const refused = refusal(() => { t.check('10.0.0.1', 'alice') })
    expect(refused?.retryAfterSeconds).toBe(40)
    expect(refused?.message).toBe("too many failed sign-ins for 'alice' from this address; try again in 40 s")
    // Another client, or another account from this client, is not held up by it.
    expect(refusal(() => { t.check('10.0.0.2', 'alice') })).toBeNull()
    expect(refusal(() => { t.check('10.0.0.1', 'bob') })).toBeNull()
    advance(40_000)
    expect(refusal(() => { t.check('10.0.0.1', 'alice') })).toBeNull()
  })

  it('refuses a client that fails across many accounts, and a success does not reset that budget', () => {
    const { t } = throttle()
    for (const name of ['a1', 'a2', 'a3', 'a4']) t.failed('10.0.0.9', name)
    t.failed('10.0.0.9', 'mine')
    t.succeeded('10.0.0.9', 'mine')
    expect(refusal(() => { t.check('10.0.0.9', 'a5') })?.message).toMatch(/^too many failed sign-ins from this address; try again in \d+ s$/)
    expect(refusal(() => { t.check('10.0.0.10', 'a5') })).toBeNull()
  })

  it('a success clears its own account\'s count', () => {
    const { t } = throttle()
    t.failed('10.0.0.1', 'alice')
    t.failed('10.0.0.1', 'alice')
    t.succeeded('10.0.0.1', 'alice')
    t.failed('10.0.0.1', 'alice')
    t.failed('10.0.0.1', 'alice')
    expect(refusal(() => { t.check('10.0.0.1', 'alice') })).toBeNull()
  })

  it('keeps a bounded number of counters, dropping the longest untouched', () => {
    const { t } = throttle({ maxEntries: 10, maxPerClient: 1000 })
    for (let i = 0; i < 100; i++) t.failed(`10.0.1.${i}`, 'x')
    expect(t.size).toBe(10)
    for (let i = 0; i < 3; i++) t.failed('10.0.1.99', 'x')
    expect(refusal(() => { t.check('10.0.1.99', 'x') })).not.toBeNull()
  })
})

describe('SignUpLimit', () => {
  it('lets one address create so many accounts per window, then says when to come back', () => {
    let now = 0
    const limit = new SignUpLimit({ maxPerClient: 2, windowMs: 3_600_000, now: () => now })
    limit.take('10.0.0.1')
    limit.take('10.0.0.1')
    now += 600_000
    expect(refusal(() => { limit.take('10.0.0.1') })?.message).toBe('too many accounts created from this address; try again in 3000 s')
    expect(refusal(() => { limit.take('10.0.0.2') })).toBeNull()
    now += 3_000_000
    expect(refusal(() => { limit.take('10.0.0.1') })).toBeNull()
  })
})
