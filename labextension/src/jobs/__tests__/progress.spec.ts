import { IJobsClient } from '../client';
import {
  cellElapsed,
  emptyProgress,
  failedCell,
  foldProgress,
  JobProgressModel,
  MAX_CELL_CHARS,
  runningCell
} from '../progress';
import { IJobProgress, IProgressEvent } from '../types';

const START: IProgressEvent[] = [
  { event: 'notebook', cells: 3, time: 100 },
  { event: 'start', cell: 1, index: 0, source: 'import time', time: 100 },
  { event: 'end', cell: 1, time: 101.5, status: 'ok', outputs: [] },
  { event: 'start', cell: 2, index: 1, source: '# the slow cell', time: 102 },
  { event: 'output', cell: 2, name: 'stdout', text: 'working\n' },
  { event: 'output', cell: 2, name: 'stderr', text: 'a warning\n' },
  { event: 'output', cell: 2, name: 'stderr', text: 'another\n' }
];

describe('folding progress events', () => {
  it('follows the cells: which runs, for how long, with its output so far', () => {
    const state = foldProgress(emptyProgress(), START);
    expect(state.total).toBe(3);
    expect(state.cells.map(c => [c.cell, c.status])).toEqual([
      [1, 'ok'],
      [2, 'running']
    ]);
    const running = runningCell(state)!;
    expect(running.source).toBe('# the slow cell');
    expect(running.output).toEqual([
      { name: 'stdout', text: 'working\n' },
      { name: 'stderr', text: 'a warning\nanother\n' }
    ]);
    expect(cellElapsed(state.cells[0], 500)).toBe(1.5);
    expect(cellElapsed(running, 110)).toBe(8);
    expect(failedCell(state)).toBeNull();
  });

  it('points at the failing cell with its traceback, in increments', () => {
    let state = foldProgress(emptyProgress(), START.slice(0, 4));
    state = foldProgress(state, START.slice(4));
    state = foldProgress(state, [
      { event: 'end', cell: 2, time: 108, status: 'ok', outputs: [{ type: 'execute_result', text: '42' }], truncated: 7 },
      { event: 'start', cell: 3, source: "raise ValueError('no')", time: 108 },
      {
        event: 'end',
        cell: 3,
        time: 108.25,
        status: 'error',
        outputs: [],
        error: { ename: 'ValueError', evalue: 'no', traceback: ['Traceback', "ValueError: no"] }
      },
      { event: 'done', status: 'failed', message: 'PapermillExecutionError: ...', time: 109 }
    ]);
    expect(runningCell(state)).toBeNull();
    expect(state.cells[1]).toMatchObject({ status: 'ok', results: [{ type: 'execute_result', text: '42' }], truncated: 7 });
    const failed = failedCell(state)!;
    expect(failed.cell).toBe(3);
    expect(failed.error!.traceback).toEqual(['Traceback', 'ValueError: no']);
    expect(state.done).toEqual({ status: 'failed', message: 'PapermillExecutionError: ...' });
  });

  it('keeps a bounded tail of a cell output, and ignores what it does not know', () => {
    const big = 'x'.repeat(MAX_CELL_CHARS);
    const state = foldProgress(emptyProgress(), [
      { event: 'start', cell: 1, source: 'loop', time: 1 },
      { event: 'output', cell: 1, name: 'stdout', text: big },
      { event: 'output', cell: 1, name: 'stdout', text: 'the end\n' },
      { event: 'output', cell: 1, name: 'stdout', text: '', truncated: true },
      { event: 'output', cell: 9, name: 'stdout', text: 'of a cell never started' },
      { event: 'mystery' } as unknown as IProgressEvent
    ]);
    const text = state.cells[0].output.map(o => o.text).join('');
    expect(text.length).toBeLessThanOrEqual(MAX_CELL_CHARS);
    expect(text.endsWith('the end\n')).toBe(true);
    expect(state.cells[0].clipped).toBe(true);
    expect(state.cells[0].limited).toBe(true); // the runner's marker: the rest is in the log
    expect(state.cells).toHaveLength(1);
  });
});

class FakeClient implements Partial<IJobsClient> {
  constructor(public pages: IJobProgress[]) {}
  calls: number[] = [];
  async readProgress(id: string, offset: number): Promise<IJobProgress> {
    this.calls.push(offset);
    const page = this.pages.find(p => p.offset === offset);
    return page ?? { job_id: id, offset, next_offset: offset, events: [], complete: false, status: 'RUNNING', now: 200 };
  }
}

const page = (offset: number, next: number, events: IProgressEvent[], complete = false): IJobProgress => ({
  job_id: 'j',
  offset,
  next_offset: next,
  events,
  complete,
  status: complete ? 'FAILED' : 'RUNNING',
  now: 110
});

describe('JobProgressModel', () => {
  it('reads from its cursor until it has all, and stops once complete', async () => {
    const client = new FakeClient([page(0, 50, START.slice(0, 3)), page(50, 90, START.slice(3)), page(90, 120, [{ event: 'done', status: 'failed' }], true)]);
    const model = new JobProgressModel({ client: client as unknown as IJobsClient, jobId: 'j', autoStart: false });
    await model.refresh();
    expect(client.calls).toEqual([0, 50, 90]);
    expect(model.complete).toBe(true);
    expect(model.polling).toBe(false);
    expect(model.state.cells).toHaveLength(2);
    expect(model.state.done?.status).toBe('failed');
    // The server's clock: elapsed times do not depend on the browser's.
    expect(Math.round(model.serverNow(Date.now()))).toBe(110);
    model.dispose();
  });

  it('stands by while hidden', async () => {
    const client = new FakeClient([page(0, 10, START.slice(0, 1))]);
    const model = new JobProgressModel({ client: client as unknown as IJobsClient, jobId: 'j', autoStart: false, visible: false });
    expect(model.polling).toBe(false);
    model.visible = true;
    expect(model.polling).toBe(true);
    await model.refresh();
    expect(model.state.total).toBe(3);
    model.dispose();
  });
});
