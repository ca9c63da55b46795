import { IJobsClient } from '../client';
import {
  ACTIVE_JOBS_INTERVAL,
  IDLE_JOBS_INTERVAL,
  IJobEnded,
  JobLogModel,
  JobsModel
} from '../model';
import { IJob, IJobLog } from '../types';

function job(id: string, status: string, patch: Partial<IJob> = {}): IJob {
  return {
    id,
    path: `${id}.ipynb`,
    kind: 'notebook',
    target: 'inline',
    status,
    parameters: {},
    experiment_id: '0',
    run_id: `run-${id}`,
    run_name: null,
    created_at: 1,
    started_at: 1,
    finished_at: null,
    duration: 1,
    failure_reason: null,
    ...patch
  };
}

/** An in-memory client; tests change `jobs` and `log` between refreshes. */
class FakeClient implements IJobsClient {
  jobs: IJob[] = [];
  listError: Error | null = null;
  log = '';
  logStatus = 'RUNNING';
  chunk = 4;
  readLogCalls: number[] = [];

  async listJobs() {
    if (this.listError) {
      throw this.listError;
    }
    return this.jobs.map(j => ({ ...j }));
  }
  async getJob(id: string) {
    return this.jobs.find(j => j.id === id)!;
  }
  async submit(request: any) {
    const j = job('new', 'QUEUED', { path: request.path });
    this.jobs.unshift(j);
    return j;
  }
  async cancel(id: string) {
    const j = this.jobs.find(x => x.id === id)!;
    j.status = 'KILLED';
    return { ...j };
  }
  async remove(id: string) {
    this.jobs = this.jobs.filter(j => j.id !== id);
  }
  async readLog(id: string, offset: number): Promise<IJobLog> {
    this.readLogCalls.push(offset);
    const data = this.log.slice(offset, offset + this.chunk);
    const next = offset + data.length;
    const ended = ['FINISHED', 'FAILED', 'KILLED'].includes(this.logStatus);
    return {
      job_id: id,
      offset,
      next_offset: next,
      data,
      complete: ended && next >= this.log.length,
      status: this.logStatus
    };
  }
  async targets() {
    return [];
  }
  async parameters(path: string) {
    return { kind: 'notebook', path, parameters: [] };
  }
  async readProgress(id: string, offset: number) {
    return { job_id: id, offset, next_offset: offset, events: [], complete: true, status: 'FINISHED', now: 0 };
  }
  async validate() {
    return { valid: true, errors: [], parameters: [] };
  }
}

describe('JobsModel', () => {
  let model: JobsModel | null = null;
  afterEach(() => {
    model?.dispose();
    model = null;
  });

  it('loads the jobs and emits changed', async () => {
    const client = new FakeClient();
    client.jobs = [job('a', 'FINISHED')];
    model = new JobsModel({ client, autoStart: false });
    expect(model.loading).toBe(true);
    const changed = jest.fn();
    model.changed.connect(changed);
    await model.refresh();
    expect(model.loading).toBe(false);
    expect(model.jobs.map(j => j.id)).toEqual(['a']);
    expect(changed).toHaveBeenCalled();
    expect(model.fetchedAt).toBeGreaterThan(0);
  });

  it('reports transitions to an ended status, not jobs ended before the first load', async () => {
    const client = new FakeClient();
    client.jobs = [job('old', 'FAILED'), job('run', 'RUNNING'), job('q', 'QUEUED')];
    model = new JobsModel({ client, autoStart: false });
    const ended: IJobEnded[] = [];
    model.jobEnded.connect((_, e) => ended.push(e));
    await model.refresh();
    expect(ended).toEqual([]);

    client.jobs[1].status = 'FINISHED';
    await model.refresh();
    expect(ended.map(e => [e.job.id, e.job.status, e.previous])).toEqual([['run', 'FINISHED', 'RUNNING']]);

    // Unchanged: no second report.
    await model.refresh();
    expect(ended).toHaveLength(1);

    client.jobs[2].status = 'FAILED';
    // A CLI job that started and ended between two polls.
    client.jobs.unshift(job('cli', 'FINISHED'));
    await model.refresh();
    expect(ended.map(e => [e.job.id, e.previous])).toEqual([
      ['run', 'RUNNING'],
      ['cli', null],
      ['q', 'QUEUED']
    ]);
  });

  it('polls faster while jobs are active', async () => {
    const client = new FakeClient();
    client.jobs = [job('a', 'FINISHED')];
    model = new JobsModel({ client, autoStart: false });
    await model.refresh();
    expect((model as any)._poll.frequency.interval).toBe(IDLE_JOBS_INTERVAL);
    client.jobs.unshift(job('b', 'RUNNING'));
    await model.refresh();
    expect(model.hasActive).toBe(true);
    expect((model as any)._poll.frequency.interval).toBe(ACTIVE_JOBS_INTERVAL);
  });

  it('keeps the last list and the error after a failed request', async () => {
    const client = new FakeClient();
    client.jobs = [job('a', 'RUNNING')];
    model = new JobsModel({ client, autoStart: false });
    await model.refresh();
    client.listError = new Error('server gone');
    await model.refresh().catch(() => undefined);
    expect(model.error?.message).toBe('server gone');
    expect(model.jobs).toHaveLength(1);
    client.listError = null;
    await model.refresh();
    expect(model.error).toBeNull();
  });

  it('submits, cancels and deletes through the client', async () => {
    const client = new FakeClient();
    client.jobs = [job('a', 'RUNNING')];
    model = new JobsModel({ client, autoStart: false });
    await model.refresh();
    const ended: IJobEnded[] = [];
    model.jobEnded.connect((_, e) => ended.push(e));

    const submitted = await model.submit({ path: 'x.ipynb' });
    expect(model.jobs[0].id).toBe(submitted.id);

    await model.cancel('a');
    expect(model.find('a')?.status).toBe('KILLED');
    expect(ended.map(e => e.job.id)).toEqual(['a']);

    await model.remove('a');
    expect(model.find('a')).toBeUndefined();
  });
});

describe('JobLogModel', () => {
  let log: JobLogModel | null = null;
  afterEach(() => {
    log?.dispose();
    log = null;
  });

  it('reads the log incrementally, all available chunks at once', async () => {
    const client = new FakeClient();
    client.log = 'hello world\n';
    log = new JobLogModel({ client, jobId: 'a', autoStart: false });
    await log.refresh();
    expect(log.text).toBe('hello world\n');
    expect(log.offset).toBe(12);
    expect(log.complete).toBe(false);
    expect(client.readLogCalls).toEqual([0, 4, 8, 12]);

    client.log += 'more\n';
    client.readLogCalls = [];
    await log.refresh();
    expect(log.text).toBe('hello world\nmore\n');
    expect(client.readLogCalls[0]).toBe(12);
  });

  it('stops polling when the log is complete', async () => {
    const client = new FakeClient();
    client.log = 'done\n';
    client.logStatus = 'FINISHED';
    log = new JobLogModel({ client, jobId: 'a', autoStart: false });
    await log.refresh();
    expect(log.complete).toBe(true);
    expect(log.polling).toBe(false);
    expect(log.status).toBe('FINISHED');
  });

  it('stands by while not visible', async () => {
    const client = new FakeClient();
    client.log = 'abc';
    log = new JobLogModel({ client, jobId: 'a', autoStart: false, visible: false });
    expect(log.polling).toBe(false);
    await log.refresh();
    expect(client.readLogCalls).toEqual([]);
    log.visible = true;
    expect(log.polling).toBe(true);
    await log.refresh();
    expect(log.text).toBe('abc');
  });

  it('backs off while the log is quiet and speeds up when it grows', async () => {
    const client = new FakeClient();
    log = new JobLogModel({ client, jobId: 'a', autoStart: false, interval: 100, maxInterval: 400 });
    await log.refresh();
    expect(log.interval).toBe(200);
    await log.refresh();
    expect(log.interval).toBe(400);
    await log.refresh();
    expect(log.interval).toBe(400);
    client.log = 'x';
    await log.refresh();
    expect(log.interval).toBe(100);
  });

  it('keeps only the tail of a long log', async () => {
    const client = new FakeClient();
    client.chunk = 1000;
    client.log = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n') + '\n';
    log = new JobLogModel({ client, jobId: 'a', autoStart: false, maxChars: 50 });
    await log.refresh();
    expect(log.truncated).toBe(true);
    expect(log.text.length).toBeLessThanOrEqual(50);
    expect(log.text.endsWith('line 99\n')).toBe(true);
    expect(log.text.startsWith('line ')).toBe(true);
  });
});
