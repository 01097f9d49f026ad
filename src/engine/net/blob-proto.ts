import type { Blob } from '../blob.js'
import { blobProtoData, blobProtoShape, shapeCount } from '../proto/binary.js'
import { createMessage, type BlobProto } from '../proto/caffe.js'

/**
 * Caffe's Blob::ShapeEquals: a proto with legacy num/channels/height/width compares them against
 * the blob's last four axes padded with 1s; otherwise the shapes must be identical.
 */
export function shapeEquals (blob: Blob, p: BlobProto): boolean {
  const legacy = p.num !== undefined || p.channels !== undefined || p.height !== undefined || p.width !== undefined
  const shape = blobProtoShape(p)
  if (legacy) {
    if (blob.shape.length > 4) return false
    const padded = [1, 1, 1, 1, ...blob.shape].slice(-4)
    return padded.every((d, i) => d === shape[i])
  }
  return shape.length === blob.shape.length && shape.every((d, i) => d === blob.shape[i])
}

/** "10 500 (5000)", Caffe's shape_string() of the blob a BlobProto would make. */
export function protoShapeString (p: BlobProto): string {
  const shape = blobProtoShape(p)
  return `${shape.join(' ')}${shape.length > 0 ? ' ' : ''}(${shapeCount(shape)})`
}

/** Copies a BlobProto's values (float or double storage) into a blob whose shape already matches. */
export function copyFromProto (blob: Blob, p: BlobProto): void {
  blob.data.set(blobProtoData(p))
  if (p.double_diff.length === blob.count) blob.diff.set(p.double_diff)
  else if (p.diff.length === blob.count) blob.diff.set(p.diff)
}

/** Caffe's Blob::FromProto with reshape: takes the proto's shape, then its values. */
export function loadFromProto (blob: Blob, p: BlobProto): void {
  blob.reshape(blobProtoShape(p))
  copyFromProto(blob, p)
}

/** Caffe's Blob::ToProto: the shape plus a copy of the data (and the diff when asked). */
export function blobToProto (blob: Blob, writeDiff = false): BlobProto {
  return createMessage('BlobProto', {
    shape: { dim: [...blob.shape] },
    data: Float32Array.from(blob.data),
    ...(writeDiff ? { diff: Float32Array.from(blob.diff) } : {})
  })
}
