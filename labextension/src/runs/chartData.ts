/**
 * Data preparation for the metric charts (uPlot) and the param/metric scatter: aligning
 * series on one x axis, smoothing, log scale, single-point metrics, run colours.
 * Pure functions, no DOM (unit-tested).
 */
import { IMetricPoint, IRun } from '../mlflow/types';

export type XAxis = 'step' | 'time';

export interface IChartSeries {
  label: string;
  color: string;
  points: IMetricPoint[];
}

/** uPlot's aligned data: the x values, then one y array per series (`null`: no value). */
export type Aligned = [number[], ...Array<Array<number | null>>];

/**
 * Merge series onto one sorted x axis (uPlot needs aligned data); gaps are `null`.
 * Non-finite values (NaN, ±Infinity) are gaps too.
 */
export function alignSeries(series: ReadonlyArray<{ points: IMetricPoint[] }>, xAxis: XAxis): Aligned {
  const xKey = (p: IMetricPoint) => (xAxis === 'step' ? p.step : p.timestamp / 1000);
  const xs = new Set<number>();
  for (const s of series) {
    for (const p of s.points) {
      xs.add(xKey(p));
    }
  }
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((v, i) => [v, i]));
  const ys = series.map(s => {
    const y: Array<number | null> = new Array(x.length).fill(null);
    for (const p of s.points) {
      y[index.get(xKey(p))!] = Number.isFinite(p.value) ? p.value : null;
    }
    return y;
  });
  return [x, ...ys];
}

/**
 * Exponential moving average with the start-up bias removed (as TensorBoard smooths):
 * `weight` 0 leaves the values as they are, 0.99 smooths nearly flat. Gaps stay gaps.
 */
export function smooth(values: ReadonlyArray<number | null>, weight: number): Array<number | null> {
  const w = Math.min(Math.max(weight, 0), 0.999);
  if (w === 0) {
    return values.slice();
  }
  let last = 0;
  let n = 0;
  return values.map(v => {
    if (v === null || !Number.isFinite(v)) {
      return null;
    }
    last = last * w + (1 - w) * v;
    n++;
    return last / (1 - Math.pow(w, n));
  });
}

/** For a log scale: values that are not positive cannot be drawn (gaps). */
export function positiveOnly(values: ReadonlyArray<number | null>): Array<number | null> {
  return values.map(v => (v !== null && v > 0 ? v : null));
}

/** Whether no series has two points: such a metric is shown as values, not as lines. */
export function isSinglePoint(series: ReadonlyArray<{ points: IMetricPoint[] }>): boolean {
  return series.every(s => s.points.length <= 1);
}

export interface ILineOptions {
  xAxis: XAxis;
  /** 0 (none) to 0.99. */
  smoothing: number;
  log: boolean;
}

/**
 * The data of a line chart: the aligned series, smoothed and made log-safe as asked. With
 * smoothing, each series is followed by its raw values (drawn faint), so the y arrays are
 * `[s1, s1raw, s2, s2raw, ...]`.
 */
export function prepareLines(series: ReadonlyArray<IChartSeries>, options: ILineOptions): Aligned {
  const [x, ...ys] = alignSeries(series, options.xAxis);
  const out: Array<Array<number | null>> = [];
  for (const y of ys) {
    const safe = options.log ? positiveOnly(y) : y;
    if (options.smoothing > 0) {
      // Gaps (x values of other series) are skipped: each run is smoothed over its own points.
      out.push(smooth(safe, options.smoothing), safe);
    } else {
      out.push(safe);
    }
  }
  return [x, ...out];
}

/**
 * Colours for `n` runs, distinct enough for 20 and more on one chart: ten hues 36° apart at
 * one lightness, then ten between them at another (darker on a light theme, lighter on a
 * dark one), then the same shifted by a few degrees. Hues are taken in an order that puts
 * the first few runs far apart on the colour wheel.
 */
const HUE_ORDER = [0, 4, 8, 2, 6, 5, 9, 3, 7, 1];

export function seriesColors(n: number, dark: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const level = Math.floor(i / 10) % 2;
    const round = Math.floor(i / 20);
    const hue = (210 + HUE_ORDER[i % 10] * 36 + level * 18 + round * 9) % 360;
    const lightness = dark ? (level ? 78 : 58) : level ? 28 : 45;
    out.push(hslToHex(hue, level ? 65 : 75, lightness));
  }
  return out;
}

export function hslToHex(h: number, s: number, l: number): string {
  const sat = s / 100;
  const light = l / 100;
  const k = (n: number) => (n + h / 30) % 12;
  const a = sat * Math.min(light, 1 - light);
  const f = (n: number) => light - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  const hex = (v: number) => Math.round(v * 255).toString(16).padStart(2, '0');
  return `#${hex(f(0))}${hex(f(8))}${hex(f(4))}`;
}

/**
 * The metrics to chart when comparing runs: those logged by at least two of them (all of
 * them for a single run), by name.
 */
export function sharedMetricKeys(runs: readonly IRun[]): string[] {
  const counts = new Map<string, number>();
  for (const run of runs) {
    for (const m of run.data.metrics ?? []) {
      counts.set(m.key, (counts.get(m.key) ?? 0) + 1);
    }
  }
  const least = runs.length > 1 ? 2 : 1;
  return [...counts.entries()]
    .filter(([, c]) => c >= least)
    .map(([k]) => k)
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

export interface IScatterPoint {
  runIndex: number;
  x: number;
  y: number;
}

export interface IScatter {
  points: IScatterPoint[];
  /** Category labels when the param is not numeric (x is then the category's index). */
  categories: string[] | null;
  /** Runs left out: they lack the param or the metric. */
  missing: number;
}

/**
 * A param against a metric, one point per run: numbers on a linear axis, anything else as
 * categories (sorted, numeric-aware).
 */
export function scatterData(runs: readonly IRun[], param: string, metric: string): IScatter {
  const pairs: Array<{ runIndex: number; p: string; y: number }> = [];
  let missing = 0;
  runs.forEach((run, runIndex) => {
    const p = run.data.params?.find(x => x.key === param)?.value;
    const m = run.data.metrics?.find(x => x.key === metric);
    const y = m === undefined ? NaN : Number(m.value);
    if (p === undefined || !Number.isFinite(y)) {
      missing++;
      return;
    }
    pairs.push({ runIndex, p, y });
  });
  const numeric = pairs.length > 0 && pairs.every(q => q.p.trim() !== '' && Number.isFinite(Number(q.p)));
  if (numeric) {
    return { points: pairs.map(q => ({ runIndex: q.runIndex, x: Number(q.p), y: q.y })), categories: null, missing };
  }
  const categories = [...new Set(pairs.map(q => q.p))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const index = new Map(categories.map((c, i) => [c, i]));
  return {
    points: pairs.map(q => ({ runIndex: q.runIndex, x: index.get(q.p)!, y: q.y })),
    categories,
    missing
  };
}

/**
 * A scatter as uPlot's aligned data: one series per run, each with a value only at its x.
 */
export function alignScatter(scatter: IScatter, runCount: number): Aligned {
  const x = [...new Set(scatter.points.map(p => p.x))].sort((a, b) => a - b);
  const index = new Map(x.map((v, i) => [v, i]));
  const ys: Array<Array<number | null>> = [];
  for (let r = 0; r < runCount; r++) {
    ys.push(new Array(x.length).fill(null));
  }
  for (const p of scatter.points) {
    ys[p.runIndex][index.get(p.x)!] = p.y;
  }
  return [x, ...ys];
}
