import { parseNetPrototxt, parseSolverPrototxt } from '../engine/proto/text-format.js'
import { assertNever } from '../lib/assert-never.js'
import type { PrototxtChecker, PrototxtSummary } from './prototxt-intake.js'

/**
 * Checks prototxt files with the engine's parser: a solver must parse as SolverParameter, a
 * training net as NetParameter with at least one Data or ImageData layer (V1 or V2 form), a
 * deploy net as NetParameter. Errors carry the parser's `file:line:column: problem` text.
 */
export const checkPrototxt: PrototxtChecker = (kind, text, fileName) => {
  switch (kind) {
    case 'solver': {
      const solver = parseSolverPrototxt(text, fileName)
      return solver.max_iter === undefined ? {} : { maxIter: solver.max_iter }
    }
    case 'net': {
      const net = parseNetPrototxt(text, fileName)
      const types = [
        ...net.layer.map((l) => l.type ?? ''),
        ...net.layers.map((l) => (l.type === 'DATA' ? 'Data' : l.type === 'IMAGE_DATA' ? 'ImageData' : String(l.type ?? '')))
      ]
      const data = types.find((t): t is NonNullable<PrototxtSummary['dataLayerType']> => t === 'Data' || t === 'ImageData')
      if (data === undefined) throw new Error(`${fileName}: the net has no Data or ImageData layer to feed it the dataset`)
      return { dataLayerType: data }
    }
    case 'deploy': {
      const net = parseNetPrototxt(text, fileName)
      if (net.layer.length === 0 && net.layers.length === 0) throw new Error(`${fileName}: the net has no layers`)
      return {}
    }
    default:
      return assertNever(kind)
  }
}
