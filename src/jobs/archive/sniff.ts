/** Image container formats recognised by their first bytes (what OpenCV's imread would open). */
export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp' | 'pnm' | 'tiff'

export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'gif', 'bmp', 'webp', 'pnm', 'tiff']

/** How many leading bytes sniffImage needs to decide. */
export const SNIFF_BYTES = 18

export const IMAGE_FORMATS_TEXT = 'PNG, JPEG, GIF, BMP, WebP, PPM/PGM/PBM or TIFF'

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
// BITMAPCOREHEADER, INFOHEADER and its V2–V5 successors: "BM" alone is too weak a signature.
const BMP_DIB_SIZES = new Set([12, 40, 52, 56, 64, 108, 124])

function startsWith (b: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false
  return true
}

function ascii (b: Uint8Array, at: number, text: string): boolean {
  if (b.length < at + text.length) return false
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false
  return true
}

function isSpace (c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

/** The image format of a file's first bytes (at least SNIFF_BYTES of them when available), or undefined. */
export function sniffImage (head: Uint8Array): ImageFormat | undefined {
  if (startsWith(head, PNG)) return 'png'
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg'
  if (ascii(head, 0, 'GIF87a') || ascii(head, 0, 'GIF89a')) return 'gif'
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'WEBP')) return 'webp'
  if (ascii(head, 0, 'II') && startsWith(head, [0x2a, 0x00], 2)) return 'tiff'
  if (ascii(head, 0, 'MM') && startsWith(head, [0x00, 0x2a], 2)) return 'tiff'
  if (ascii(head, 0, 'BM') && head.length >= 18) {
    const dib = (head[14] as number) | ((head[15] as number) << 8) | ((head[16] as number) << 16) | ((head[17] as number) << 24)
    if (BMP_DIB_SIZES.has(dib)) return 'bmp'
  }
  const d = head[1]
  if (head[0] === 0x50 && d !== undefined && d >= 0x31 && d <= 0x36 && isSpace(head[2])) return 'pnm'
  return undefined
}

function hex (head: Uint8Array, n: number): string {
  return Array.from(head.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ')
}

// Leading bytes of things people upload by mistake, with the hint they need.
function guess (head: Uint8Array): string | undefined {
  const text = Buffer.from(head.subarray(0, 64)).toString('latin1').trimStart().toLowerCase()
  if (text.startsWith('<!doctype html') || text.startsWith('<html') || text.startsWith('<head') || text.startsWith('<body')) {
    return 'which looks like HTML — is the URL a web page?'
  }
  if (text.startsWith('<?xml') || text.startsWith('<')) return 'which looks like XML or HTML — is the URL a web page or an error response?'
  if (text.startsWith('{') || text.startsWith('[')) return 'which looks like JSON — is the URL an API response?'
  if (startsWith(head, [0x1f, 0x8b])) return 'which is gzip data again: the archive was compressed twice'
  if (ascii(head, 0, 'PK') && (head[2] === 3 || head[2] === 5)) return 'which is a ZIP archive; repack it as .tar.gz'
  if (ascii(head, 0, 'BZh')) return 'which is bzip2-compressed; repack it with gzip (.tar.gz)'
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'which is xz-compressed; repack it with gzip (.tar.gz)'
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'which is zstd-compressed; repack it with gzip (.tar.gz)'
  if (startsWith(head, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return 'which is a 7-Zip archive; repack it as .tar.gz'
  if (ascii(head, 0, 'Rar!')) return 'which is a RAR archive; repack it as .tar.gz'
  if (startsWith(head, [0x00, 0x00, 0x08, 0x03]) || startsWith(head, [0x00, 0x00, 0x08, 0x01])) {
    return 'which looks like an MNIST IDX file; convert it to <label>/<file> images or an LMDB first'
  }
  const image = sniffImage(head)
  if (image !== undefined) return `which is a single ${image.toUpperCase()} image, not an archive of images`
  return undefined
}

/** "it starts with bytes 3c 21 44 4f, which looks like HTML — …": the tail of a not-an-archive message. */
export function describeLeadingBytes (head: Uint8Array): string {
  const hint = guess(head)
  return `it starts with bytes ${hex(head, 4)}${hint === undefined ? '' : `, ${hint}`}`
}
