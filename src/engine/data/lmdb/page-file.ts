import { closeSync, readSync } from 'node:fs'

/**
 * Positional, read-only access to a large file through a small LRU of aligned blocks, so a
 * 2 GB dataset is never loaded whole. Returned views point into cached blocks; blocks are never
 * recycled, so a view stays valid after its block leaves the cache (the GC keeps it alive).
 */
export class PageFile {
  readonly fd: number
  readonly size: number
  readonly blockSize: number
  private readonly maxBlocks: number
  private readonly blocks = new Map<number, Uint8Array>()
  private closed = false

  constructor (fd: number, size: number, blockSize: number, maxBlocks: number) {
    this.fd = fd
    this.size = size
    this.blockSize = blockSize
    this.maxBlocks = Math.max(2, maxBlocks)
  }

  /**
   * `length` bytes at `offset`. Callers check bounds against `size` first; a range inside one
   * block is served from the cache, a larger one (overflow data) is read straight into a new buffer.
   */
  read (offset: number, length: number): Uint8Array {
    if (this.closed) throw new Error('read from a closed LMDB file')
    const block = Math.floor(offset / this.blockSize)
    const start = offset - block * this.blockSize
    if (start + length <= this.blockSize) {
      const b = this.block(block)
      return b.subarray(start, start + length)
    }
    const out = new Uint8Array(length)
    this.readFully(out, offset)
    return out
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.blocks.clear()
    closeSync(this.fd)
  }

  private block (index: number): Uint8Array {
    const hit = this.blocks.get(index)
    if (hit !== undefined) {
      // Re-insert to mark it most recently used (Map keeps insertion order).
      this.blocks.delete(index)
      this.blocks.set(index, hit)
      return hit
    }
    const offset = index * this.blockSize
    const b = new Uint8Array(Math.min(this.blockSize, this.size - offset))
    this.readFully(b, offset)
    if (this.blocks.size >= this.maxBlocks) {
      const oldest = this.blocks.keys().next().value
      if (oldest !== undefined) this.blocks.delete(oldest)
    }
    this.blocks.set(index, b)
    return b
  }

  private readFully (into: Uint8Array, offset: number): void {
    let done = 0
    while (done < into.length) {
      const n = readSync(this.fd, into, done, into.length - done, offset + done)
      // The file shrank under us (or the size was wrong): report it instead of spinning.
      if (n === 0) throw new RangeError(`short read at byte ${offset + done} of ${this.size}`)
      done += n
    }
  }
}
