import { describe, expect, it } from 'vitest'
import { planSplit } from '../../../src/jobs/archive/split-plan.js'

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `f${String(i).padStart(3, '0')}`)
const sizes = (plan: ReturnType<typeof planSplit>, label: string): [number, number] => {
  const s = plan.get(label)
  if (s === undefined) throw new Error(`no label ${label}`)
  return [s.training.size, s.test.size]
}

describe('planSplit', () => {
  it('keeps the original unit case: 80/20 over foo/{1,2} and bar/{1..5} gives foo 1/1, bar 4/1', () => {
    const plan = planSplit(new Map([['foo', ['1', '2']], ['bar', ['1', '2', '3', '4', '5']]]), 0.8)
    expect([...(plan.get('foo')?.training ?? [])]).toEqual(['1'])
    expect([...(plan.get('foo')?.test ?? [])]).toEqual(['2'])
    expect([...(plan.get('bar')?.training ?? [])]).toEqual(['1', '3', '4', '5'])
    expect([...(plan.get('bar')?.test ?? [])]).toEqual(['2'])
  })

  it('orders by name, not by the order it is given', () => {
    const a = planSplit(new Map([['x', ['c', 'a', 'e', 'b', 'd']]]), 0.6)
    const b = planSplit(new Map([['x', ['a', 'b', 'c', 'd', 'e']]]), 0.6)
    expect([...(a.get('x')?.training ?? [])].sort()).toEqual([...(b.get('x')?.training ?? [])].sort())
    expect([...(b.get('x')?.training ?? [])]).toEqual(['a', 'c', 'e'])
  })

  it('hits the target share per label within one image', () => {
    for (const f of [0.1, 0.3, 0.5, 0.7, 0.75, 0.9]) {
      for (const n of [2, 3, 10, 37, 100, 1000]) {
        const [tr, te] = sizes(planSplit(new Map([['l', names(n)]]), f), 'l')
        expect(tr + te).toBe(n)
        expect(Math.abs(tr - f * n), `f=${f} n=${n} tr=${tr}`).toBeLessThanOrEqual(1)
      }
    }
    // 0.7 is not exact in binary: 70 of 100 and 7 of 10 must still come out exactly.
    expect(sizes(planSplit(new Map([['l', names(10)]]), 0.7), 'l')).toEqual([7, 3])
    expect(sizes(planSplit(new Map([['l', names(100)]]), 0.7), 'l')).toEqual([70, 30])
  })

  it('puts every label with two or more images on both sides, and a single image in training', () => {
    for (const f of [0.01, 0.5, 0.99]) {
      const plan = planSplit(new Map([['two', ['a', 'b']], ['three', ['a', 'b', 'c']], ['one', ['only']]]), f)
      expect(sizes(plan, 'two')).toEqual([1, 1])
      const [tr, te] = sizes(plan, 'three')
      expect(tr).toBeGreaterThan(0)
      expect(te).toBeGreaterThan(0)
      expect(sizes(plan, 'one')).toEqual([1, 0])
    }
  })

  it('refuses a fraction outside (0, 1): 70 must be normalised by the caller', () => {
    for (const f of [0, 1, 70, -0.5, Number.NaN]) expect(() => planSplit(new Map(), f)).toThrow(RangeError)
  })
})
