import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { datumToImage, decodeImage, encodeImage, imageToDatum, rawDatumPixels, readImage, resizeLinear } from '../../../src/engine/data/image.js'
import { DataShapeError, ImageDecodeError } from '../../../src/engine/data/errors.js'
import { makePng } from './png-writer.js'

let tmp: string
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'et-image-')) })
afterAll(() => { rmSync(tmp, { recursive: true, force: true }) })

// 3x2 RGB: red, green, blue / white, black, (10, 20, 30)
const RGB = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 10, 20, 30]

describe('decodeImage', () => {
  it('decodes a colour PNG to CHW with channels in BGR order (OpenCV imread)', async () => {
    const img = await decodeImage(makePng(3, 2, 2, RGB), 'rgb.png')
    expect([img.channels, img.height, img.width]).toEqual([3, 2, 3])
    expect([...img.data.subarray(0, 6)]).toEqual([0, 0, 255, 255, 0, 30]) // B plane
    expect([...img.data.subarray(6, 12)]).toEqual([0, 255, 0, 255, 0, 20]) // G plane
    expect([...img.data.subarray(12, 18)]).toEqual([255, 0, 0, 255, 0, 10]) // R plane
  })

  it('converts colour to one gray channel with the fixed-point luma weights', async () => {
    const img = await decodeImage(makePng(3, 2, 2, RGB), 'rgb.png', { mode: 'gray' })
    expect(img.channels).toBe(1)
    // libpng rgb_to_gray (0.299, 0.587): (9797 R + 19234 G + 3737 B + 16384) >> 15
    expect([...img.data]).toEqual([76, 150, 29, 255, 0, 18])
  })

  it('keeps a gray PNG exact: replicated in colour mode, one channel in gray and native mode', async () => {
    const png = makePng(2, 2, 0, [0, 7, 128, 255])
    const color = await decodeImage(png, 'g.png')
    expect(color.channels).toBe(3)
    expect([...color.data]).toEqual([0, 7, 128, 255, 0, 7, 128, 255, 0, 7, 128, 255])
    expect([...(await decodeImage(png, 'g.png', { mode: 'gray' })).data]).toEqual([0, 7, 128, 255])
    const native = await decodeImage(png, 'g.png', { mode: 'native' })
    expect([native.channels, ...native.data]).toEqual([1, 0, 7, 128, 255])
  })

  it('drops alpha for colour and gray, keeps it as a 4th channel in native mode', async () => {
    const png = makePng(2, 1, 6, [10, 20, 30, 40, 50, 60, 70, 80])
    const color = await decodeImage(png, 'a.png')
    expect([color.channels, ...color.data]).toEqual([3, 30, 70, 20, 60, 10, 50])
    const native = await decodeImage(png, 'a.png', { mode: 'native' })
    expect([native.channels, ...native.data]).toEqual([4, 30, 70, 20, 60, 10, 50, 40, 80])
    const ga = await decodeImage(makePng(2, 1, 4, [10, 200, 20, 100]), 'ga.png', { mode: 'native' })
    expect([ga.channels, ...ga.data]).toEqual([4, 10, 20, 10, 20, 10, 20, 200, 100])
  })

  it('reduces 16-bit samples to their high byte', async () => {
    const img = await decodeImage(makePng(3, 1, 0, [0, 0x1234, 0xffff], 16), 'g16.png', { mode: 'gray' })
    expect([...img.data]).toEqual([0, 0x12, 0xff])
  })

  it('decodes JPEG close to the source pixels', async () => {
    const src = Buffer.alloc(16 * 16 * 3)
    for (let i = 0; i < 16 * 16; i++) src.set([200, 100, 50], i * 3)
    const jpg = await sharp(src, { raw: { width: 16, height: 16, channels: 3 } }).jpeg({ quality: 95 }).toBuffer()
    const img = await decodeImage(jpg, 'x.jpg')
    expect(img.channels).toBe(3)
    expect(Math.abs((img.data[0] as number) - 50)).toBeLessThan(4) // B
    expect(Math.abs((img.data[256] as number) - 100)).toBeLessThan(4) // G
    expect(Math.abs((img.data[512] as number) - 200)).toBeLessThan(4) // R
  })

  it('resizes when new height and width are both given', async () => {
    const img = await decodeImage(makePng(2, 1, 0, [0, 100]), 'r.png', { mode: 'gray', height: 1, width: 4 })
    expect([img.height, img.width, ...img.data]).toEqual([1, 4, 0, 25, 75, 100])
    const same = await decodeImage(makePng(2, 1, 0, [0, 100]), 'r.png', { mode: 'gray', height: 0, width: 4 })
    expect(same.width).toBe(2)
  })

  it('names the file when the bytes are not an image', async () => {
    const text = join(tmp, 'notes.png')
    writeFileSync(text, 'this is not a picture')
    await expect(readImage(text)).rejects.toThrow(ImageDecodeError)
    await expect(readImage(text)).rejects.toThrow(`cannot decode image ${text}: `)
    await expect(readImage(join(tmp, 'missing.png'))).rejects.toThrow(/missing\.png: no such file/)
    const empty = join(tmp, 'empty.jpg')
    writeFileSync(empty, '')
    await expect(readImage(empty)).rejects.toThrow(/empty\.jpg: the file is empty/)
    const png = makePng(4, 4, 2, new Array<number>(48).fill(9))
    await expect(decodeImage(png.subarray(0, 40), 'cut.png')).rejects.toThrow(/cannot decode image cut\.png/)
  })
})

describe('resizeLinear (cv::resize INTER_LINEAR)', () => {
  it('uses half-pixel centres and replicates edges', () => {
    const down = resizeLinear({ channels: 1, height: 1, width: 4, data: Uint8Array.from([0, 40, 80, 120]) }, 1, 2)
    expect([...down.data]).toEqual([20, 100])
    const up = resizeLinear({ channels: 1, height: 2, width: 1, data: Uint8Array.from([0, 100]) }, 4, 1)
    expect([...up.data]).toEqual([0, 25, 75, 100])
  })

  it('resizes every channel plane independently', () => {
    const img = { channels: 2, height: 2, width: 2, data: Uint8Array.from([10, 10, 10, 10, 200, 200, 200, 200]) }
    const out = resizeLinear(img, 3, 5)
    expect(out.data.length).toBe(2 * 3 * 5)
    expect([...out.data.subarray(0, 15)].every((v) => v === 10)).toBe(true)
    expect([...out.data.subarray(15)].every((v) => v === 200)).toBe(true)
  })
})

describe('Datum images', () => {
  it('round-trips an encoded PNG Datum losslessly, gray staying one channel', async () => {
    const gray = { channels: 1, height: 2, width: 3, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) }
    const png = await encodeImage(gray, 'png')
    const back = await datumToImage({ data: png, encoded: true, label: 3, float_data: new Float32Array(0) })
    expect([back.channels, back.height, back.width, ...back.data]).toEqual([1, 2, 3, 1, 2, 3, 4, 5, 6])
    const color = { channels: 3, height: 1, width: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) }
    const c = await datumToImage({ data: await encodeImage(color, 'png'), encoded: true, float_data: new Float32Array(0) })
    expect([...c.data]).toEqual([1, 2, 3, 4, 5, 6])
    const forced = await datumToImage({ data: png, encoded: true, float_data: new Float32Array(0) }, { mode: 'color' })
    expect(forced.channels).toBe(3)
  })

  it('returns raw Datum pixels as views and checks their size', () => {
    const d = imageToDatum({ channels: 1, height: 2, width: 2, data: Uint8Array.from([1, 2, 3, 4]) }, 7)
    expect(d.label).toBe(7)
    expect([...rawDatumPixels(d).data]).toEqual([1, 2, 3, 4])
    const f = rawDatumPixels({ channels: 1, height: 1, width: 2, float_data: Float32Array.from([0.5, 1.5]) })
    expect(f.data).toBeInstanceOf(Float32Array)
    expect(() => rawDatumPixels({ channels: 1, height: 2, width: 2, data: Uint8Array.from([1, 2, 3]), float_data: new Float32Array(0) }, 'key 00000001'))
      .toThrow(DataShapeError)
    expect(() => rawDatumPixels({ channels: 1, height: 2, width: 2, data: Uint8Array.from([1, 2, 3]), float_data: new Float32Array(0) }, 'key 00000001'))
      .toThrow(/key 00000001: datum is 1x2x2 \(4 values\) but holds 3 bytes/)
  })

  it('names the datum when an encoded one does not decode', async () => {
    await expect(datumToImage({ data: Uint8Array.from([1, 2, 3]), encoded: true, float_data: new Float32Array(0) }, { source: 'datum 00000009' }))
      .rejects.toThrow(/cannot decode image datum 00000009/)
  })
})
