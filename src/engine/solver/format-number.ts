/**
 * Prints a number the way a C++ `std::ostream` does with its default flags (printf `%g`,
 * precision 6), which is how every float in a Caffe log is written: `0.00992565`, `2.36203`,
 * `1e-05`, `3.7346e-07`, `1.23457e+06`. Log parsers and people diffing our logs against real
 * Caffe's rely on this exact spelling.
 */
export function formatCxx (value: number, precision = 6): string {
  if (Number.isNaN(value)) return value < 0 ? '-nan' : 'nan'
  if (value === Infinity) return 'inf'
  if (value === -Infinity) return '-inf'
  if (value === 0) return Object.is(value, -0) ? '-0' : '0'
  const p = precision === 0 ? 1 : precision
  const exp = value.toExponential(p - 1)
  const ePos = exp.indexOf('e')
  const x = Number(exp.slice(ePos + 1))
  if (x < -4 || x >= p) {
    const mantissa = stripZeros(exp.slice(0, ePos))
    const sign = x < 0 ? '-' : '+'
    const digits = String(Math.abs(x)).padStart(2, '0')
    return `${mantissa}e${sign}${digits}`
  }
  return stripZeros(value.toFixed(Math.max(0, p - 1 - x)))
}

function stripZeros (s: string): string {
  if (!s.includes('.')) return s
  let end = s.length
  while (s[end - 1] === '0') end--
  if (s[end - 1] === '.') end--
  return s.slice(0, end)
}
