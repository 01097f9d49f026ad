import { crc32, deflateSync } from 'node:zlib'

/**
 * A minimal PNG encoder for tests, independent of sharp: the image under test is built byte by
 * byte, so decoding it checks our channel order and conversions rather than sharp against itself.
 * colorType: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA; `samples` are row-major interleaved.
 */
export function makePng (width: number, height: number, colorType: 0 | 2 | 4 | 6, samples: number[], bitDepth: 8 | 16 = 8): Buffer {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType]
  if (samples.length !== width * height * channels) throw new Error('sample count does not match the image size')
  const bytesPerSample = bitDepth / 8
  const stride = width * channels * bytesPerSample
  const raw = Buffer.alloc(height * (stride + 1))
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0
    for (let i = 0; i < width * channels; i++) {
      const v = samples[y * width * channels + i] as number
      const o = y * (stride + 1) + 1 + i * bytesPerSample
      if (bitDepth === 8) raw[o] = v
      else raw.writeUInt16BE(v, o)
    }
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = bitDepth
  ihdr[9] = colorType
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0))
  ])
}

function chunk (type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([len, body, crc])
}
