/**
 * The runs views' pure parts: which columns differ, nested runs under their parent, the
 * settings kept per experiment, and the chart data.
 */
import { StateDB } from '@jupyterlab/statedb';

import { ColumnId } from '../../mlflow/format';
import { IRun } from '../../mlflow/types';
import {
  alignScatter,
  alignSeries,
  isSinglePoint,
  positiveOnly,
  prepareLines,
  scatterData,
  seriesColors,
  sharedMetricKeys,
  smooth
} from '../chartData';
import { automaticColumns, availableKeys, differingColumns } from '../columns';
import { groupRuns } from '../grouping';
import { defaultSettings, RunsViewStateStore, sanitizeSettings, STATE_PREFIX } from '../viewState';

let counter = 0;
function run(options: {
  id?: string;
  name?: string;
  params?: Record<string, string>;
  metrics?: Record<string, number>;
  tags?: Record<string, string>;
  user?: string;
}): IRun {
  const id = options.id ?? `run${counter++}`;
  return {
    info: { run_id: id, run_name: options.name ?? id, experiment_id: '1', status: 'FINISHED', user_id: options.user ?? 'ada' },
    data: {
      params: Object.entries(options.params ?? {}).map(([key, value]) => ({ key, value })),
      metrics: Object.entries(options.metrics ?? {}).map(([key, value]) => ({ key, value, step: 0, timestamp: 0 })),
      tags: Object.entries({ 'mlflow.source.name': 'train.ipynb', ...(options.tags ?? {}) }).map(([key, value]) => ({ key, value }))
    }
  };
}

describe('differing columns', () => {
  const runs = [
    run({ params: { lr: '0.1', batch: '32', opt: 'adam' }, metrics: { loss: 0.5, acc: 0.9, epochs: 10 } }),
    run({ params: { lr: '0.01', batch: '32', opt: 'adam' }, metrics: { loss: 0.4, acc: 0.9, epochs: 10 } }),
    run({ params: { lr: '0.001', batch: '32' }, metrics: { loss: 0.3, acc: 0.9, epochs: 10 } })
  ];

  it('are the metrics and params whose values differ (a missing key differs), metrics first', () => {
    expect(differingColumns(runs)).toEqual(['metric:loss', 'param:lr', 'param:opt']);
  });

  it('the automatic columns add start, duration and source; the user only when several ran them', () => {
    expect(automaticColumns(runs)).toEqual(['start', 'duration', 'source', 'metric:loss', 'param:lr', 'param:opt']);
    const mixed = [...runs, run({ user: 'grace', params: { lr: '0.1', batch: '32', opt: 'adam' }, metrics: { loss: 0.5, acc: 0.9, epochs: 10 } })];
    expect(automaticColumns(mixed).slice(0, 4)).toEqual(['start', 'duration', 'user', 'source']);
  });

  it('one run: every metric and param is worth a column', () => {
    expect(differingColumns(runs.slice(0, 1))).toEqual(['metric:acc', 'metric:epochs', 'metric:loss', 'param:batch', 'param:lr', 'param:opt']);
  });

  it('caps the automatic columns', () => {
    const many = [0, 1].map(i =>
      run({ metrics: Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`m${k}`, i * k])) })
    );
    expect(automaticColumns(many, 10)).toHaveLength(3 + 10);
  });

  it('lists the keys with MLflow system tags last', () => {
    const keys = availableKeys([run({ tags: { team: 'x', 'mlflow.user': 'ada' } })]);
    expect(keys.tags).toEqual(['team', 'mlflow.source.name', 'mlflow.user']);
  });
});

describe('nested runs', () => {
  const parent = run({ id: 'p', name: 'sweep' });
  const c1 = run({ id: 'c1', tags: { 'mlflow.parentRunId': 'p' } });
  const c2 = run({ id: 'c2', tags: { 'mlflow.parentRunId': 'p' } });
  const grandchild = run({ id: 'g', tags: { 'mlflow.parentRunId': 'c1' } });
  const orphan = run({ id: 'o', tags: { 'mlflow.parentRunId': 'not-loaded' } });
  const other = run({ id: 'x' });
  const runs = [c2, other, grandchild, parent, orphan, c1];

  const ids = (expanded: string[]) =>
    groupRuns(runs, new Set(expanded)).map(r => `${'-'.repeat(r.depth)}${r.run.info.run_id}${r.childCount ? `(${r.childCount}${r.expanded ? '+' : ''})` : ''}`);

  it('are grouped under their parent, collapsed by default; a child whose parent is not loaded stays visible', () => {
    expect(ids([])).toEqual(['x', 'p(2)', 'o']);
  });

  it('expand in the order given, nested levels too', () => {
    expect(ids(['p'])).toEqual(['x', 'p(2+)', '-c2', '-c1(1)', 'o']);
    expect(ids(['p', 'c1'])).toEqual(['x', 'p(2+)', '-c2', '-c1(1+)', '--g', 'o']);
  });

  it('survive a cycle of parent tags (each run once)', () => {
    const a = run({ id: 'a', tags: { 'mlflow.parentRunId': 'b' } });
    const b = run({ id: 'b', tags: { 'mlflow.parentRunId': 'a' } });
    const rows = groupRuns([a, b], new Set(['a', 'b']));
    expect(rows.map(r => r.run.info.run_id).sort()).toEqual(['a', 'b']);
  });

  it('10,000 flat runs group fast', () => {
    const many = Array.from({ length: 10000 }, () => run({}));
    const t0 = Date.now();
    expect(groupRuns(many, new Set())).toHaveLength(10000);
    expect(Date.now() - t0).toBeLessThan(500);
  });
});

describe('runs view settings', () => {
  it('persist per experiment in the state database and come back in a new session', async () => {
    const db = new StateDB();
    const store = new RunsViewStateStore({ state: db });
    expect(await store.load('7')).toEqual(defaultSettings());
    const seen: string[] = [];
    store.changed.connect((_, id) => seen.push(id));
    store.update('7', { columns: ['param:lr', 'metric:loss'], widths: { 'param:lr': 140 }, sort: { column: 'metric:loss', desc: false } });
    store.update('8', { filter: "params.lr = '0.1'" });
    expect(seen).toEqual(['7', '8']);
    await new Promise(resolve => setTimeout(resolve, 0));

    // A reload: a new store over the same database.
    const again = new RunsViewStateStore({ state: db });
    expect(again.get('7')).toEqual(defaultSettings()); // not read yet
    const s7 = await again.load('7');
    expect(s7.columns).toEqual(['param:lr', 'metric:loss']);
    expect(s7.widths).toEqual({ 'param:lr': 140 });
    expect(s7.sort).toEqual({ column: 'metric:loss', desc: false });
    expect((await again.load('8')).filter).toBe("params.lr = '0.1'");
    expect((await again.load('9')).columns).toBeNull();
    expect(await db.fetch(STATE_PREFIX + '7')).toBeTruthy();
  });

  it('announce settings read from the database (views made before it answered follow)', async () => {
    const db = new StateDB();
    await db.save(STATE_PREFIX + '3', { filter: 'x' });
    const store = new RunsViewStateStore({ state: db });
    const seen: string[] = [];
    store.changed.connect((_, id) => seen.push(id));
    await store.load('3');
    expect(seen).toEqual(['3']);
    expect(store.get('3').filter).toBe('x');
  });

  it('work without a state database (kept in memory)', async () => {
    const store = new RunsViewStateStore({ state: null });
    await store.load('1');
    store.update('1', { listMetric: 'loss' });
    expect(store.get('1').listMetric).toBe('loss');
  });

  it('replace anything malformed with defaults', () => {
    expect(sanitizeSettings(null)).toEqual(defaultSettings());
    expect(sanitizeSettings('x')).toEqual(defaultSettings());
    const s = sanitizeSettings({
      columns: ['param:lr', 'bogus', 7, 'metric:loss'],
      widths: { a: 100, b: -3, c: 'wide', d: 99999 },
      sort: { column: 'nope', desc: true },
      filter: 5,
      listMetric: 'loss'
    });
    expect(s.columns).toEqual(['param:lr', 'metric:loss'] as ColumnId[]);
    expect(s.widths).toEqual({ a: 100 });
    expect(s.sort).toEqual(defaultSettings().sort);
    expect(s.filter).toBe('');
    expect(s.listMetric).toBe('loss');
  });
});

describe('chart data', () => {
  const p = (step: number, value: number) => ({ step, value, timestamp: 1000 * step });

  it('aligns series on one x axis with gaps', () => {
    expect(alignSeries([{ points: [p(0, 1), p(2, 3)] }, { points: [p(1, 5), p(2, NaN)] }], 'step')).toEqual([
      [0, 1, 2],
      [1, null, 3],
      [null, 5, null]
    ]);
    expect(alignSeries([{ points: [p(3, 1)] }], 'time')[0]).toEqual([3]);
  });

  it('smooths with a debiased moving average; 0 leaves values, gaps stay gaps', () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smooth([10, 10, null, 10], 0.9);
    expect(s[0]).toBeCloseTo(10); // no start-up bias toward 0
    expect(s[1]).toBeCloseTo(10);
    expect(s[2]).toBeNull();
    expect(s[3]).toBeCloseTo(10);
    const noisy = smooth([0, 1, 0, 1, 0, 1, 0, 1], 0.8);
    const spread = (xs: Array<number | null>) => Math.max(...(xs as number[])) - Math.min(...(xs as number[]));
    expect(spread(noisy.slice(4))).toBeLessThan(0.5);
  });

  it('log scale: non-positive values are gaps', () => {
    expect(positiveOnly([1, 0, -2, null, 0.5])).toEqual([1, null, null, null, 0.5]);
  });

  it('prepares lines: smoothed series followed by its raw values, log-safe', () => {
    const series = [{ label: 'a', color: '#000', points: [p(0, 4), p(1, 0), p(2, 2)] }];
    expect(prepareLines(series, { xAxis: 'step', smoothing: 0, log: true })).toEqual([[0, 1, 2], [4, null, 2]]);
    const smoothed = prepareLines(series, { xAxis: 'step', smoothing: 0.5, log: false });
    expect(smoothed).toHaveLength(3);
    expect(smoothed[2]).toEqual([4, 0, 2]);
    expect(smoothed[1][0]).toBeCloseTo(4);
  });

  it('a metric with one point per run is a value, not a line', () => {
    expect(isSinglePoint([{ points: [p(0, 1)] }, { points: [] }])).toBe(true);
    expect(isSinglePoint([{ points: [p(0, 1), p(1, 2)] }])).toBe(false);
  });

  it('gives 24 runs distinct colours in both themes', () => {
    for (const dark of [false, true]) {
      const colors = seriesColors(24, dark);
      expect(new Set(colors).size).toBe(24);
      colors.forEach(c => expect(c).toMatch(/^#[0-9a-f]{6}$/));
      // No two of the first 20 are near-identical (RGB distance).
      const rgb = colors.slice(0, 20).map(c => [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16)));
      let least = Infinity;
      for (let i = 0; i < rgb.length; i++) {
        for (let j = i + 1; j < rgb.length; j++) {
          least = Math.min(least, Math.hypot(...rgb[i].map((v, k) => v - rgb[j][k])));
        }
      }
      expect(least).toBeGreaterThan(30);
    }
  });

  it('charts the metrics at least two runs share', () => {
    const runs = [run({ metrics: { loss: 1, acc: 1, only: 1 } }), run({ metrics: { loss: 2, acc: 1 } }), run({ metrics: { loss: 2 } })];
    expect(sharedMetricKeys(runs)).toEqual(['acc', 'loss']);
    expect(sharedMetricKeys(runs.slice(0, 1))).toEqual(['acc', 'loss', 'only']);
  });

  it('scatters a numeric param on a linear axis, any other as categories', () => {
    const runs = [
      run({ params: { lr: '0.1', opt: 'sgd' }, metrics: { loss: 0.5 } }),
      run({ params: { lr: '0.01', opt: 'adam' }, metrics: { loss: 0.3 } }),
      run({ params: { opt: 'sgd' }, metrics: { loss: 0.4 } }),
      run({ params: { lr: '0.01', opt: 'adamw' } })
    ];
    const numeric = scatterData(runs, 'lr', 'loss');
    expect(numeric.categories).toBeNull();
    expect(numeric.points).toEqual([
      { runIndex: 0, x: 0.1, y: 0.5 },
      { runIndex: 1, x: 0.01, y: 0.3 }
    ]);
    expect(numeric.missing).toBe(2);
    expect(alignScatter(numeric, 4)).toEqual([[0.01, 0.1], [null, 0.5], [0.3, null], [null, null], [null, null]]);

    const cat = scatterData(runs, 'opt', 'loss');
    expect(cat.categories).toEqual(['adam', 'sgd']);
    expect(cat.points.map(q => q.x)).toEqual([1, 0, 1]);
  });
});

describe('run colours', () => {
  it('puts the first five runs far apart on the colour wheel', () => {
    const hue = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16) / 255);
      const max = Math.max(r, g, b);
      const min = Math.min(r, g, b);
      const d = max - min;
      const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
      return (h * 60 + 360) % 360;
    };
    const hues = seriesColors(5, false).map(hue);
    for (let i = 0; i < hues.length; i++) {
      for (let j = i + 1; j < hues.length; j++) {
        const gap = Math.abs(hues[i] - hues[j]);
        expect(Math.min(gap, 360 - gap)).toBeGreaterThanOrEqual(60);
      }
    }
  });
});
