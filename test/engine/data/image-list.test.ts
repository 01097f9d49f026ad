import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ImageListSource, joinRoot, parseImageList, readImageList, shuffleInPlace } from '../../../src/engine/data/image-list.js'
import { DataShapeError, ImageDecodeError, ListFileError } from '../../../src/engine/data/errors.js'
import { makePng } from './png-writer.js'

let tmp: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'et-list-'))
  mkdirSync(join(tmp, 'imgs', 'sub dir'), { recursive: true })
  for (let i = 0; i < 4; i++) writeFileSync(join(tmp, 'imgs', `${i}.png`), makePng(4, 2, 0, new Array<number>(8).fill(i * 10)))
  writeFileSync(join(tmp, 'imgs', 'sub dir', 'x.png'), makePng(2, 2, 2, new Array<number>(12).fill(200)))
})
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

describe('list files', () => {
  it('splits at the last space so paths may contain spaces; skips blank lines; accepts CRLF', () => {
    const entries = parseImageList('a/b.png 3\r\n\nsub dir/x y.jpg 12\n  \nc.png\t-1\n', 'list.txt')
    expect(entries).toEqual([
      { path: 'a/b.png', label: 3, line: 1 },
      { path: 'sub dir/x y.jpg', label: 12, line: 3 },
      { path: 'c.png', label: -1, line: 5 }
    ])
  })

  it('names the file and line of a bad entry', async () => {
    expect(() => parseImageList('a.png 1\nb.png\n', 'train.txt')).toThrow('train.txt:2: expected "<path> <label>", got "b.png"')
    expect(() => parseImageList('a.png one\n', 'train.txt')).toThrow('train.txt:1: label "one" is not an integer')
    expect(() => parseImageList('a.png 99999999999\n', 'train.txt')).toThrow(ListFileError)
    await expect(readImageList(join(tmp, 'nope.txt'))).rejects.toThrow(/nope\.txt: cannot open list file: no such file/)
  })

  it('shuffles reproducibly with a given random and joins root folders', () => {
    const a = [1, 2, 3, 4, 5, 6, 7, 8]
    const b = [...a]
    const seq = (): (() => number) => { let s = 7; return () => { s = (s * 16807) % 2147483647; return s / 2147483647 } }
    shuffleInPlace(a, seq())
    shuffleInPlace(b, seq())
    expect(a).toEqual(b)
    expect([...a].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(a).not.toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(joinRoot('root/', 'a.png')).toBe('root/a.png')
    expect(joinRoot('root', 'a.png')).toBe('root/a.png')
    expect(joinRoot('', 'a.png')).toBe('a.png')
  })
})

describe('ImageListSource', () => {
  it('reads labelled images in order, resized and gray or colour, wrapping around', async () => {
    const list = join(tmp, 'list.txt')
    writeFileSync(list, '0.png 0\n1.png 1\nsub dir/x.png 7\n')
    const info: string[] = []
    let restarts = 0
    const src = await ImageListSource.open(list, { rootFolder: join(tmp, 'imgs'), isColor: false, newHeight: 3, newWidth: 3, info: (m) => info.push(m), onRestart: () => { restarts++ } })
    expect(info).toEqual([`Opening file ${list}`, 'A total of 3 images.'])
    const first = await src.peek()
    expect([first.image.channels, first.image.height, first.image.width]).toEqual([1, 3, 3])
    const batch = await src.nextBatch(5)
    expect(batch.map((b) => b.label)).toEqual([0, 1, 7, 0, 1])
    expect([...batch[1]?.image.data ?? []].every((v) => v === 10)).toBe(true)
    expect(batch[2]?.image.data[0]).toBe(200)
    expect(restarts).toBe(1)
    const color = await ImageListSource.open(list, { rootFolder: join(tmp, 'imgs') + '/' })
    expect((await color.next()).image.channels).toBe(3)
  })

  it('reshuffles at every wrap when shuffle is on', async () => {
    const list = join(tmp, 'list4.txt')
    writeFileSync(list, [0, 1, 2, 3].map((i) => `${i}.png ${i}`).join('\n'))
    let s = 3
    const random = (): number => { s = (s * 16807) % 2147483647; return s / 2147483647 }
    const info: string[] = []
    const src = await ImageListSource.open(list, { rootFolder: join(tmp, 'imgs'), shuffle: true, random, info: (m) => info.push(m) })
    expect(info).toContain('Shuffling data')
    const labels = (await src.nextBatch(8)).map((b) => b.label)
    expect([...labels.slice(0, 4)].sort()).toEqual([0, 1, 2, 3])
    expect([...labels.slice(4)].sort()).toEqual([0, 1, 2, 3])
  })

  it('fails clearly on a missing image, an empty list and half-set resize', async () => {
    const list = join(tmp, 'missing.txt')
    writeFileSync(list, '0.png 0\nghost.png 1\n')
    const src = await ImageListSource.open(list, { rootFolder: join(tmp, 'imgs') })
    await expect(src.nextBatch(2)).rejects.toThrow(ImageDecodeError)
    await expect(src.nextBatch(2)).rejects.toThrow(/ghost\.png: no such file/)
    const empty = join(tmp, 'empty.txt')
    writeFileSync(empty, '\n')
    await expect(ImageListSource.open(empty)).rejects.toThrow(/empty\.txt: File is empty/)
    await expect(ImageListSource.open(list, { newHeight: 5 })).rejects.toThrow(DataShapeError)
  })
})
