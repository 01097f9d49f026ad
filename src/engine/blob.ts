/**
 * A Caffe blob: an N-d array of float32 values (`data`) and their gradients (`diff`),
 * row-major, outermost axis first. Storage only grows: reshaping to a smaller count keeps
 * the buffer and narrows the views, as Caffe's SyncedMemory does.
 */
export class Blob {
  shape: number[] = []
  count = 0
  data: Float32Array = new Float32Array(0)
  diff: Float32Array = new Float32Array(0)
  private capacity = 0
  private dataBuffer: Float32Array = new Float32Array(0)
  private diffBuffer: Float32Array = new Float32Array(0)

  constructor (shape: readonly number[] = []) {
    this.reshape(shape)
  }

  reshape (shape: readonly number[]): void {
    let count = 1
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid blob dimension ${d} in shape [${shape.join(', ')}]`)
      count *= d
    }
    this.shape = [...shape]
    this.count = shape.length === 0 ? 1 : count
    if (this.count > this.capacity) {
      this.capacity = this.count
      this.dataBuffer = allocFloats(this.capacity)
      this.diffBuffer = allocFloats(this.capacity)
    }
    this.data = this.dataBuffer.subarray(0, this.count)
    this.diff = this.diffBuffer.subarray(0, this.count)
  }

  reshapeLike (other: Blob): void {
    this.reshape(other.shape)
  }

  /** Size of axis `i`; negative indices count from the end, as in Caffe's CanonicalAxisIndex. */
  dim (i: number): number {
    const axis = this.canonicalAxis(i)
    return this.shape[axis] ?? 1
  }

  canonicalAxis (i: number): number {
    const n = this.shape.length
    if (i < -n || i >= Math.max(n, 1)) throw new Error(`axis ${i} out of range for a ${n}-axis blob`)
    return i < 0 ? i + n : i
  }

  /** Product of dimensions in [start, end). */
  countRange (start: number, end = this.shape.length): number {
    let c = 1
    for (let i = start; i < end; i++) c *= this.shape[i] ?? 1
    return c
  }

  /** Legacy 4-D accessors (num, channels, height, width); missing axes count as 1. */
  get num (): number { return this.legacy(0) }
  get channels (): number { return this.legacy(1) }
  get height (): number { return this.legacy(2) }
  get width (): number { return this.legacy(3) }

  /** Caffe's shape_string(): "64 1 28 28 (50176)". */
  shapeString (): string {
    return `${this.shape.join(' ')}${this.shape.length > 0 ? ' ' : ''}(${this.count})`
  }

  private legacy (i: number): number {
    return this.shape[i] ?? 1
  }
}

/**
 * Float storage for blobs. SharedArrayBuffer-backed so that kernels may hand slices of
 * the same memory to worker threads without copying.
 */
export function allocFloats (n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(n, 1) * 4), 0, n)
}
