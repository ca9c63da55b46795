import { InfinStorRequestError } from '../../common/request';
import {
  columnValue,
  compareValues,
  describeError,
  experimentFilter,
  explainFilterError,
  formatBytes,
  formatDuration,
  formatIso,
  formatMetric,
  formatRelative,
  formatTimestamp,
  isLabNotebookPath,
  modelFilter,
  numberFormatter,
  orderByFor,
  parseCsv,
  previewKind,
  quoteKey,
  runDuration,
  runFilter,
  runName,
  statusKind,
  statusLabel,
  valuesDiffer,
  htmlPreviewDocument,
  IPreviewTheme
} from '../format';
import { IRun } from '../types';

function run(partial: Partial<IRun['info']> = {}, data: IRun['data'] = {}): IRun {
  return {
    info: { run_id: 'abcdef0123456789', experiment_id: '1', status: 'FINISHED', ...partial },
    data: { metrics: [], params: [], tags: [], ...data }
  };
}

describe('formatDuration', () => {
  it.each([
    [null, '—'],
    [-5, '—'],
    [0, '0 ms'],
    [120, '120 ms'],
    [5200, '5.2 s'],
    [42_000, '42 s'],
    [184_000, '3 min 4 s'],
    [3_720_000, '1 h 2 min'],
    [90_000_000, '1 d 1 h']
  ])('%p -> %p', (ms, text) => {
    expect(formatDuration(ms as number | null)).toBe(text);
  });

  it('runs still active count up to now', () => {
    const r = run({ status: 'RUNNING', start_time: 1000 });
    expect(runDuration(r, 6000)).toBe(5000);
    expect(runDuration(run({ start_time: 1000, end_time: 3000 }))).toBe(2000);
    expect(runDuration(run({ status: 'FAILED', start_time: 1000 }))).toBeNull();
    expect(runDuration(run())).toBeNull();
  });
});

describe('formatTimestamp / formatRelative', () => {
  it('formats local times', () => {
    const t = new Date(2026, 10, 25, 7, 3, 9).getTime();
    expect(formatTimestamp(t)).toBe('2026-11-25 07:03:09');
    expect(formatTimestamp(undefined)).toBe('—');
  });
  it('is relative for recent times', () => {
    const now = new Date(2026, 10, 25, 12, 0, 0).getTime();
    expect(formatRelative(now - 10_000, now)).toBe('just now');
    expect(formatRelative(now - 5 * 60_000, now)).toBe('5 min ago');
    expect(formatRelative(now - 3 * 3600_000, now)).toBe('3 h ago');
    expect(formatRelative(now - 2 * 86400_000, now)).toBe('2 d ago');
    expect(formatRelative(now - 90 * 86400_000, now)).toMatch(/^2026-08-\d\d$/);
  });
});

describe('formatMetric', () => {
  it.each([
    [0.123456, '0.1235'],
    [12, '12'],
    [12345.6789, '12345.68'],
    [1.2345e-7, '1.235e-7'],
    [NaN, 'NaN'],
    ['NaN', 'NaN'],
    [Infinity, '∞'],
    [-Infinity, '-∞'],
    [undefined, '—'],
    [0, '0']
  ])('%p -> %p', (v, text) => {
    expect(formatMetric(v as number)).toBe(text);
  });
  it('formats bytes', () => {
    expect(formatBytes(12)).toBe('12 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes('2097152')).toBe('2.0 MB');
    expect(formatBytes(undefined)).toBe('');
  });
});

describe('search syntax', () => {
  it('turns plain text into a name filter and passes search syntax through', () => {
    expect(experimentFilter('')).toBe('');
    expect(experimentFilter(' mnist ')).toBe("name ILIKE '%mnist%'");
    expect(experimentFilter("it's")).toBe("name ILIKE '%it\\'s%'");
    expect(experimentFilter("tags.team = 'vision'")).toBe("tags.team = 'vision'");
    expect(experimentFilter("name LIKE 'a%'")).toBe("name LIKE 'a%'");
    expect(modelFilter('resnet')).toBe("name ILIKE '%resnet%'");
  });
  it('quotes keys that need it', () => {
    expect(quoteKey('lr')).toBe('lr');
    expect(quoteKey('mlflow.source.name')).toBe('`mlflow.source.name`');
    expect(quoteKey('val loss')).toBe('`val loss`');
  });
  it('maps columns to MLflow order_by', () => {
    expect(orderByFor('start', true)).toBe('attributes.start_time DESC');
    expect(orderByFor('name', false)).toBe('attributes.run_name ASC');
    expect(orderByFor('status', false)).toBe('attributes.status ASC');
    expect(orderByFor('user', false)).toBe('attributes.user_id ASC');
    expect(orderByFor('source', true)).toBe('tags.`mlflow.source.name` DESC');
    expect(orderByFor('metric:val.loss', false)).toBe('metrics.`val.loss` ASC');
    expect(orderByFor('param:lr', true)).toBe('params.lr DESC');
    expect(orderByFor('tag:team', true)).toBe('tags.team DESC');
    expect(orderByFor('duration', true)).toBeNull();
  });
});

describe('columns', () => {
  const r = run(
    { start_time: 1000, end_time: 4000, user_id: 'ann', run_name: 'bright-owl' },
    {
      metrics: [{ key: 'loss', value: 0.5 }],
      params: [{ key: 'lr', value: '0.01' }],
      tags: [{ key: 'mlflow.source.name', value: 'work/train.ipynb' }]
    }
  );
  it('reads values', () => {
    expect(columnValue(r, 'name')).toBe('bright-owl');
    expect(columnValue(r, 'duration')).toBe(3000);
    expect(columnValue(r, 'user')).toBe('ann');
    expect(columnValue(r, 'source')).toBe('work/train.ipynb');
    expect(columnValue(r, 'metric:loss')).toBe(0.5);
    expect(columnValue(r, 'param:lr')).toBe('0.01');
    expect(columnValue(r, 'param:missing')).toBeNull();
    expect(runName(run())).toBe('abcdef01');
  });
  it('sorts numbers numerically and missing values last', () => {
    const values = ['10', '9', null, '100'];
    expect(values.slice().sort(compareValues)).toEqual(['9', '10', '100', null]);
    expect(compareValues('b', 'a')).toBeGreaterThan(0);
  });
  it('detects differences', () => {
    expect(valuesDiffer(['1', '1'])).toBe(false);
    expect(valuesDiffer(['1', '2'])).toBe(true);
    expect(valuesDiffer(['1', undefined])).toBe(true);
  });
  it('knows lab notebook paths and status kinds', () => {
    expect(isLabNotebookPath('work/train.ipynb')).toBe(true);
    expect(isLabNotebookPath('/abs/train.ipynb')).toBe(false);
    expect(isLabNotebookPath('train.py')).toBe(false);
    expect(statusKind('FAILED')).toBe('error');
    expect(statusKind('RUNNING')).toBe('pending');
    expect(statusKind('FINISHED')).toBe('ok');
  });
});

describe('describeError', () => {
  it('says what to do for each reason', () => {
    const signedOut = describeError(
      new InfinStorRequestError('Sign in first.', { status: 401, reason: 'sign_in_required' })
    );
    expect(signedOut.kind).toBe('signed-out');
    expect(signedOut.hint).toContain('Sign in from the InfinStor panel');
    expect(signedOut.message).toBe('Sign in first.');

    expect(
      describeError(new InfinStorRequestError('down', { status: 503, reason: 'tracking_unavailable' })).kind
    ).toBe('unavailable');
    const denied = describeError(
      new InfinStorRequestError('No access to experiment 3', { status: 403, reason: 'PERMISSION_DENIED' })
    );
    expect(denied.kind).toBe('forbidden');
    expect(denied.message).toBe('No access to experiment 3');
    expect(describeError(new InfinStorRequestError('x', { status: 0 })).kind).toBe('network');
    expect(
      describeError(new InfinStorRequestError('bad filter', { status: 400, reason: 'INVALID_PARAMETER_VALUE' })).kind
    ).toBe('invalid');
    expect(describeError(new Error('boom')).kind).toBe('other');
  });
});

describe('parseCsv / previewKind', () => {
  it('parses quoted fields', () => {
    const { rows, truncated } = parseCsv('a,b,c\n1,"x, y",3\r\n4,"he said ""hi""",6\n');
    expect(rows).toEqual([
      ['a', 'b', 'c'],
      ['1', 'x, y', '3'],
      ['4', 'he said "hi"', '6']
    ]);
    expect(truncated).toBe(false);
  });
  it('detects tabs and truncates', () => {
    const { rows, truncated } = parseCsv('a\tb\n1\t2\n3\t4\n', 2);
    expect(rows).toEqual([
      ['a', 'b'],
      ['1', '2']
    ]);
    expect(truncated).toBe(true);
  });
  it('picks a preview from the name', () => {
    expect(previewKind('plots/loss.PNG')).toBe('image');
    expect(previewKind('data/table.csv')).toBe('csv');
    expect(previewKind('report.html')).toBe('html');
    expect(previewKind('cfg.json')).toBe('json');
    expect(previewKind('nb/train.ipynb')).toBe('notebook');
    expect(previewKind('model/MLmodel')).toBe('text');
    expect(previewKind('notes.txt')).toBe('text');
    expect(previewKind('model.pkl')).toBe('none');
  });
});

describe('htmlPreviewDocument', () => {
  const dark: IPreviewTheme = { light: false, background: '#111111', color: 'rgba(255, 255, 255, 1)', link: '#8ab4f8', font: 'system-ui, sans-serif' };

  it('starts an HTML artifact from the dark theme, not a white page', () => {
    const doc = htmlPreviewDocument('<p>hello</p>', dark);
    expect(doc).toMatch(/^<!DOCTYPE html><html><head><meta name="color-scheme" content="dark">/);
    expect(doc).toContain(':root{color-scheme:dark}');
    expect(doc).toContain('html{background:#111111;color:rgba(255, 255, 255, 1);font-family:system-ui, sans-serif}');
    expect(doc).toContain('<body><p>hello</p></body>');
  });

  it("puts the defaults first in the artifact's own head, so its styles win", () => {
    const page = '<!doctype html><html lang="en"><head><style>body{background:white}</style></head><body>x</body></html>';
    const doc = htmlPreviewDocument(page, dark);
    expect(doc.startsWith('<!doctype html><html lang="en"><head><meta name="color-scheme" content="dark">')).toBe(true);
    expect(doc.indexOf('html{background:#111111')).toBeLessThan(doc.indexOf('body{background:white}'));
    expect(htmlPreviewDocument('<html><body>y</body></html>', dark)).toMatch(/^<html><head><meta name="color-scheme" content="dark">/);
  });

  it('follows the light theme and keeps a theme value from ending the rule', () => {
    const doc = htmlPreviewDocument('x', { ...dark, light: true, background: 'red}</style><script>', color: '' });
    expect(doc).toContain('color-scheme:light');
    expect(doc).toContain('html{background:#fff;color:#000;');
    expect(doc).not.toContain('<script>');
  });
});

describe('numberFormatter (one table column)', () => {
  const column = (values: Array<number | null>, sig?: number) => {
    const f = numberFormatter(values, sig);
    return values.map(v => f(v));
  };

  it('drops float noise: 0.15, not 0.15000000000000002', () => {
    expect(column([0.1 + 0.05])).toEqual(['0.15']);
    expect(column([0.15000000000000002, 0.3])).toEqual(['0.15', '0.30']);
  });

  it('gives every value of a column the same decimals, as many as its largest value needs', () => {
    expect(column([0.123456, 0.9876543, 0.5])).toEqual(['0.1235', '0.9877', '0.5000']);
    expect(column([12.3456, 1.5, 0.25])).toEqual(['12.35', '1.50', '0.25']);
    expect(column([1234.5678, 2.5])).toEqual(['1235', '3']);
    expect(column([1234.5678, 0.0004])).toEqual(['1235', '0.0004']);
    expect(column([0.1, 0.2], 2)).toEqual(['0.1', '0.2']);
  });

  it('keeps integers, gaps, NaN and infinities as they are', () => {
    expect(column([1, 20, 300])).toEqual(['1', '20', '300']);
    expect(column([0.5, null])).toEqual(['0.5', '—']);
    const f = numberFormatter([0.5, NaN, Infinity]);
    expect([f(NaN), f(Infinity), f('0.25'), f(-0.00001)]).toEqual(['NaN', '∞', '0.3', '-1.000e-5']);
  });

  it('uses exponents for a column of very small or very large numbers', () => {
    expect(column([1.23456e-7, 5e-6])).toEqual(['1.235e-7', '5.000e-6']);
    expect(column([1.5e13 + 0.5])).toEqual(['1.500e+13']);
  });

  it('never shows -0', () => {
    expect(column([-0.00001, 0.5], 2)).toEqual(['-1.000e-5', '0.5']);
    expect(column([-0.04, 0.5], 1)).toEqual(['-0.04', '0.5']);
    expect(numberFormatter([0.5])(-0.01)).toBe('-0.01');
  });
});

describe('formatIso / translated formats', () => {
  it('ISO 8601 in UTC for tooltips', () => {
    expect(formatIso(Date.UTC(2026, 10, 25, 6, 31, 2, 345))).toBe('2026-11-25T06:31:02Z');
    expect(formatIso(undefined)).toBe('');
  });

  it('relative times, durations and statuses go through the translator', () => {
    const seen: string[] = [];
    const trans = {
      __: (msg: string, ...args: any[]) => {
        seen.push(msg);
        return `«${msg.replace(/%(\d)/g, (_, i) => String(args[Number(i) - 1]))}»`;
      }
    } as any;
    const now = Date.UTC(2026, 10, 25, 12);
    expect(formatRelative(now - 5 * 60_000, now, trans)).toBe('«5 min ago»');
    expect(formatDuration(184_000, trans)).toBe('«3 min 4 s»');
    expect(statusLabel('FAILED', trans)).toBe('«Failed»');
    expect(describeError(new Error('x'), trans).title).toBe('«The request failed.»');
    expect(seen).toContain('%1 min ago');
  });
});

describe('run filters', () => {
  it('plain text filters run names; search syntax passes through', () => {
    expect(runFilter('')).toBe('');
    expect(runFilter(' sweep ')).toBe("attributes.run_name ILIKE '%sweep%'");
    expect(runFilter("it's")).toBe("attributes.run_name ILIKE '%it\\'s%'");
    expect(runFilter('metrics.loss < 0.2')).toBe('metrics.loss < 0.2');
  });

  it("explains MLflow's refusals in words a user can act on", () => {
    expect(explainFilterError("Invalid attribute key 'loss' specified. Valid keys are ...")).toContain('metrics.loss');
    expect(explainFilterError('Expected a quoted string value for parameter (e.g. ...). Got value 0.01')).toContain("params.lr = '0.01'");
    expect(explainFilterError("Expected numeric value type for metric. Found 'a'")).toContain('metrics.loss < 0.2');
    expect(explainFilterError("Invalid clause(s) in filter string: 'metrics.loss', '<'")).toContain('not MLflow search syntax');
  });
});
