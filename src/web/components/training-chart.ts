import UPlot from 'uplot'
import { h, replaceChildren, uid } from '../lib/dom.js'
import { metric, obj } from '../lib/format.js'

interface Point {
  iteration: number
  loss: number | null
  lr: number | null
  test: Record<string, number>
}

const COLORS = ['#15803d', '#b45309', '#be185d', '#0e7490']

function powersOf10 (_u: UPlot, splits: number[]): Array<number | null> {
  return splits.map((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9 ? v : null)
}

/** Test outputs that are fractions in [0, 1], drawn against their own right-hand axis. */
function isUnitMetric (key: string): boolean {
  return /accuracy|acc$|precision|recall/i.test(key)
}

/** The chartable points of a training job's `progress.series`, oldest first. */
export function pointsOf (progress: unknown): Point[] {
  const series = obj(progress)?.series
  if (!Array.isArray(series)) return []
  const points: Point[] = []
  for (const raw of series) {
    const p = obj(raw)
    if (p === null || typeof p.iteration !== 'number') continue
    const test: Record<string, number> = {}
    for (const [k, v] of Object.entries(obj(p.test) ?? {})) if (typeof v === 'number') test[k] = v
    points.push({ iteration: p.iteration, loss: typeof p.loss === 'number' ? p.loss : null, lr: typeof p.lr === 'number' ? p.lr : null, test })
  }
  return points.sort((a, b) => a.iteration - b.iteration)
}

/**
 * Live charts of a training run with uPlot: training loss and every test output over
 * iterations (accuracy-like outputs on a 0–1 axis on the right), and the learning rate below.
 * `data-points` on the figure counts the points drawn; the caption states the latest values
 * in words for those who cannot see the lines.
 */
export class TrainingChart {
  readonly el: HTMLElement
  private readonly lossHost = h('div', { class: 'chart', role: 'img', 'aria-label': 'Loss and test outputs over iterations' })
  private readonly lrHost = h('div', { class: 'chart chart-small', role: 'img', 'aria-label': 'Learning rate over iterations' })
  private readonly caption = h('figcaption')
  private readonly empty = h('p', { class: 'muted' }, 'No progress yet: points appear as the solver reports them.')
  private loss: UPlot | null = null
  private lr: UPlot | null = null
  private testKeys: string[] = []
  private progress: unknown = null
  private readonly logScale = h('input', { type: 'checkbox', id: uid('log-scale') })
  private readonly resize: ResizeObserver

  constructor () {
    this.el = h('figure', { class: 'training-chart', 'data-points': '0' },
      h('div', { class: 'field checkbox chart-options' }, this.logScale, h('label', { for: this.logScale.id }, 'Logarithmic loss axis')),
      this.empty, this.lossHost, this.lrHost, this.caption)
    this.logScale.addEventListener('change', () => {
      this.loss?.destroy()
      this.loss = null
      this.update(this.progress)
    })
    this.resize = new ResizeObserver(() => {
      const width = this.width()
      this.loss?.setSize({ width, height: 280 })
      this.lr?.setSize({ width, height: 140 })
    })
    this.resize.observe(this.el)
  }

  update (progress: unknown): void {
    this.progress = progress
    const points = pointsOf(progress)
    this.el.dataset.points = String(points.length)
    this.empty.hidden = points.length > 0
    if (points.length === 0) return
    const keys = [...new Set(points.flatMap((p) => Object.keys(p.test)))].sort()
    if (this.loss === null || keys.join() !== this.testKeys.join()) this.create(keys)
    const x = points.map((p) => p.iteration)
    // A log axis cannot show 0 (a perfectly fitted batch): such points become gaps.
    const log = this.logScale.checked
    const y = (v: number | null): number | null => log && v !== null && v <= 0 ? null : v
    this.loss?.setData([x, points.map((p) => y(p.loss)), ...keys.map((k) => points.map((p) => isUnitMetric(k) ? p.test[k] ?? null : y(p.test[k] ?? null)))])
    this.lr?.setData([x, points.map((p) => p.lr)])
    const last = points[points.length - 1] as Point
    // Caffe prints the rate on display iterations only; the final point often has none.
    const lastLr = [...points].reverse().find((p) => p.lr !== null)?.lr ?? null
    const lastTest = [...points].reverse().find((p) => Object.keys(p.test).length > 0)
    replaceChildren(this.caption,
      `${points.length} points up to iteration ${last.iteration}: loss ${metric(last.loss)}, learning rate ${metric(lastLr, 6)}`,
      lastTest === undefined ? '' : `; at iteration ${lastTest.iteration} the test net gave ${Object.entries(lastTest.test).map(([k, v]) => `${k} ${metric(v)}`).join(', ')}`,
      '.')
  }

  dispose (): void {
    this.resize.disconnect()
    this.loss?.destroy()
    this.lr?.destroy()
  }

  private width (): number {
    return Math.max(240, Math.floor(this.el.clientWidth || 640))
  }

  private create (keys: string[]): void {
    this.loss?.destroy()
    this.lr?.destroy()
    this.testKeys = keys
    const width = this.width()
    const hasUnit = keys.some(isUnitMetric)
    this.loss = new UPlot({
      width,
      height: 280,
      scales: { x: { time: false }, y: this.logScale.checked ? { distr: 3 } : {}, unit: { range: [0, 1] } },
      legend: { live: true },
      series: [
        { label: 'iteration' },
        { label: 'loss', stroke: '#1d4ed8', width: 2, scale: 'y', value: (_u, v) => metric(v) },
        ...keys.map((k, i) => ({
          label: `test ${k}`,
          stroke: COLORS[i % COLORS.length] as string,
          width: 2,
          scale: isUnitMetric(k) ? 'unit' : 'y',
          // Tests run every few hundred iterations: join their points across the gaps.
          spanGaps: true,
          points: { show: true, size: 6 },
          value: (_u: UPlot, v: number | null) => metric(v)
        }))
      ],
      axes: [
        { label: 'iteration' },
        {
          scale: 'y',
          label: 'loss',
          size: 60,
          // The filter below turns ticks into nulls, though uPlot's types say numbers.
          values: (_u: UPlot, ticks: Array<number | null>) => ticks.map((t) => t === null ? '' : t !== 0 && Math.abs(t) < 1e-3 ? t.toExponential(0) : metric(t)),
          // A log axis splits at 2…9 × each power too; labels, ticks and grid lines only at the
          // powers keep it readable.
          ...(this.logScale.checked ? { filter: powersOf10, ticks: { filter: powersOf10 }, grid: { filter: powersOf10 } } : {})
        },
        ...(hasUnit ? [{ scale: 'unit', side: 1, label: 'accuracy', grid: { show: false } }] : [])
      ]
    }, [[]], this.lossHost)
    this.lr = new UPlot({
      width,
      height: 140,
      scales: { x: { time: false } },
      series: [
        { label: 'iteration' },
        { label: 'learning rate', stroke: '#7e22ce', width: 2, value: (_u, v) => metric(v, 6) }
      ],
      axes: [{ label: 'iteration' }, { label: 'lr', size: 70, values: (_u, ticks) => ticks.map((t) => metric(t, 6)) }]
    }, [[]], this.lrHost)
  }
}
