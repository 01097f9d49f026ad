/**
 * A seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) that every random
 * draw of the engine goes through: fillers, dropout masks, random crops and mirrors, shuffles.
 * The same seed gives the same sequence on every machine and kernel path, so a fixed
 * `random_seed` reproduces a run bit for bit. Not for cryptography.
 */
export class Rng {
  private s0 = 0
  private s1 = 0
  private s2 = 0
  private s3 = 0
  /** Box-Muller yields two normals per draw; the second waits here (NaN = none). */
  private spare = Number.NaN

  constructor (seed: number) {
    this.seed(seed)
  }

  /** Restarts the sequence from `seed` (any finite number; the integer part is used, 64 bits' worth). */
  seed (seed: number): void {
    if (!Number.isFinite(seed)) throw new RangeError(`random seed must be a finite number, got ${seed}`)
    const whole = Math.trunc(seed)
    const lo = whole >>> 0
    const hi = Math.floor(whole / 4294967296) >>> 0
    // splitmix32 spreads a small seed (0, 1, 2 …) over all 128 bits of state; an all-zero
    // state would make xoshiro return zeros forever.
    let x = (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.s0 = next()
    this.s1 = next()
    this.s2 = next()
    this.s3 = next()
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1
    this.spare = Number.NaN
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32 (): number {
    const s1 = this.s1
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0
    const t = s1 << 9
    this.s2 ^= this.s0
    this.s3 ^= s1
    this.s1 ^= this.s2
    this.s0 ^= this.s3
    this.s2 ^= t
    this.s3 = rotl(this.s3, 11)
    return result
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform (): number {
    return this.nextUint32() / 4294967296
  }

  /** Uniform in [a, b]; Caffe's caffe_rng_uniform uses the closed interval as well. */
  uniformRange (a: number, b: number): number {
    return a + (b - a) * this.uniform()
  }

  /** Normal with the given mean and standard deviation (Box-Muller). */
  gaussian (mean = 0, std = 1): number {
    let z = this.spare
    if (Number.isNaN(z)) {
      // 1 - uniform() lies in (0, 1], so the log never sees 0.
      const u1 = 1 - this.uniform()
      const u2 = this.uniform()
      const r = Math.sqrt(-2 * Math.log(u1))
      z = r * Math.cos(2 * Math.PI * u2)
      this.spare = r * Math.sin(2 * Math.PI * u2)
    } else {
      this.spare = Number.NaN
    }
    return mean + std * z
  }

  /** true with probability p. */
  bernoulli (p: number): boolean {
    return this.uniform() < p
  }

  /** Uniform integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.uniform() * n)
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T> (items: T[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = items[i] as T
      items[i] = items[j] as T
      items[j] = tmp
    }
  }

  /** The generator's whole state, for snapshots that must resume the same sequence. */
  getState (): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0, this.spare]
  }

  setState (state: readonly number[]): void {
    if (state.length !== 5) throw new RangeError(`random state must have 5 numbers, got ${state.length}`)
    this.s0 = (state[0] ?? 0) | 0
    this.s1 = (state[1] ?? 0) | 0
    this.s2 = (state[2] ?? 0) | 0
    this.s3 = (state[3] ?? 0) | 0
    this.spare = state[4] ?? Number.NaN
  }
}

function rotl (x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

/**
 * A generator for `seed`; a negative seed (Caffe's default `random_seed: -1`) means
 * "seed from the clock", which makes the run non-reproducible, as in Caffe.
 */
export function createRng (seed: number): Rng {
  if (seed < 0) return new Rng(Date.now() ^ (process.pid << 16) ^ Math.floor(performance.now() * 1000))
  return new Rng(seed)
}
