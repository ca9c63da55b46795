import { InfinStorRequestError } from '../../common/request';
import {
  columnValue,
  compareValues,
  describeError,
  experimentFilter,
  formatBytes,
  formatDuration,
  formatMetric,
  formatRelative,
  formatTimestamp,
  isLabNotebookPath,
  modelFilter,
  orderByFor,
  parseCsv,
  previewKind,
  quoteKey,
  runDuration,
  runName,
  statusKind,
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
