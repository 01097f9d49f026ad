import { compareNames } from './archive-layout.js'

/** Which file names of one label go to each side. */
export interface LabelSplit {
  training: ReadonlySet<string>
  test: ReadonlySet<string>
}

// Shares like 0.7 are not exact in binary; without slack 7 of 10 could land on the wrong side.
const EPSILON = 1e-9

/**
 * The original splitter's rule, per label over names in compareNames order: a file goes to
 * training iff training's share *before* it is at or below the target, i.e.
 * tr ≤ f·(tr + te). With 0.8 over foo/{1,2} and bar/{1..5} that gives foo 1/1 and bar 4/1.
 * The rule always sends a label's first file to training and its second to test, so every
 * label with two or more images lands on both sides; the fix-up below only guards that.
 * `trainingFraction` must be strictly between 0 and 1 (the caller turns 70 into 0.7).
 */
export function planSplit (files: ReadonlyMap<string, readonly string[]>, trainingFraction: number): Map<string, LabelSplit> {
  if (!(trainingFraction > 0 && trainingFraction < 1)) {
    throw new RangeError(`training fraction must be strictly between 0 and 1, got ${trainingFraction}`)
  }
  const plan = new Map<string, LabelSplit>()
  for (const [label, unsorted] of files) {
    const names = [...unsorted].sort(compareNames)
    const training: string[] = []
    const test: string[] = []
    for (const name of names) {
      const tr = training.length
      if (tr <= trainingFraction * (tr + test.length) + EPSILON) training.push(name)
      else test.push(name)
    }
    if (names.length >= 2 && test.length === 0) test.push(training.pop() as string)
    if (names.length >= 2 && training.length === 0) training.push(test.shift() as string)
    plan.set(label, { training: new Set(training), test: new Set(test) })
  }
  return plan
}
