/**
 * One run with what surrounds it: its experiment, parent and children, the models it logged
 * (MLflow 3 logged models) and the registered versions made from it. Live while its page is
 * visible: the run itself is the probe (one `runs/get`); when it changed, the run is taken in,
 * and what surrounds it every few changes, when its status changes, and at least every minute.
 */
import { JSONValue } from '@lumino/coreutils';

import { PARENT_RUN_TAG, quoteKey, quoteString, tagMap } from '../mlflow/format';
import { ILiveOptions, LIVE_RELOAD_EVERY, LiveModel, runSignature } from '../mlflow/models';
import { IExperiment, ILoggedModel, IMetricPoint, IModelVersion, IRun } from '../mlflow/types';
import { IMlflowClient } from '../tokens';

/** The tag the jobs manager sets on the runs of a job (infinstor_jupyterlab/jobs/manager.py). */
export const JOB_ID_TAG = 'infinstor.job.id';

export interface IRunPage {
  run: IRun;
  experiment: IExperiment | null;
  parent: IRun | null;
  children: IRun[];
  loggedModels: ILoggedModel[];
  versions: IModelVersion[];
}

/** Everything around the run is asked again every this many changes the probe saw. */
const SURROUNDINGS_EVERY = 6;

export class RunPageModel extends LiveModel<IRunPage> {
  constructor(options: { client: IMlflowClient; runId: string } & ILiveOptions) {
    super(`run-${options.runId}`, options, { reloadEvery: LIVE_RELOAD_EVERY });
    this.runId = options.runId;
  }

  readonly runId: string;

  get page(): IRunPage | null {
    return this._page;
  }
  get run(): IRun | null {
    return this._page?.run ?? null;
  }
  /** The job that made the run, from its tag. */
  get jobId(): string | null {
    return (this.run && tagMap(this.run.data.tags)[JOB_ID_TAG]) || null;
  }

  /** Load now, what surrounds the run too (the first time, and the refresh button). */
  reload(): Promise<void> {
    this._full = true;
    return this.refresh();
  }

  /** The history of one metric (cached until its latest value changes). */
  history(key: string): Promise<IMetricPoint[]> {
    const latest = this.run?.data.metrics?.find(m => m.key === key);
    const version = latest ? `${latest.step}:${latest.value}:${latest.timestamp}` : '';
    const cached = this._histories.get(key);
    if (cached && cached.version === version) {
      return cached.points;
    }
    const points = this.client.getMetricHistory(this.runId, key);
    points.catch(() => this._histories.delete(key));
    this._histories.set(key, { version, points });
    return points;
  }

  async setTag(key: string, value: string): Promise<void> {
    await this.client.setTag(this.runId, key, value);
    await this.reload();
  }

  async deleteTag(key: string): Promise<void> {
    await this.client.deleteTag(this.runId, key);
    await this.reload();
  }

  protected async probe(): Promise<JSONValue> {
    const run = await this.client.getRun(this.runId);
    this._probed = run;
    return runSignature(run);
  }

  /** Every answer holds the run, whose signature is the probe's answer. */
  protected fingerprintInAnswer(): boolean {
    return true;
  }

  protected fingerprintOf(answer: IRunPage): JSONValue {
    return runSignature(answer.run);
  }

  protected async request(afterProbe: boolean): Promise<IRunPage> {
    const probed = afterProbe ? this._probed : null;
    this._probed = null;
    const run = probed ?? (await this.client.getRun(this.runId));
    // Everything after a reload, a refresh or a full request due (not prompted by a probe), when
    // the status changes, and every few changes the probe saw; else the run only.
    const full =
      this._full ||
      !afterProbe ||
      !this._page ||
      ++this._ticks % SURROUNDINGS_EVERY === 0 ||
      run.info.status !== this._page.run.info.status;
    if (!full && this._page) {
      return { ...this._page, run };
    }
    this._full = false;
    const parentId = tagMap(run.data.tags)[PARENT_RUN_TAG];
    const experimentId = run.info.experiment_id;
    // What surrounds the run is shown when it comes; a failure there does not hide the run.
    const [experiment, parent, children, loggedModels, versions] = await Promise.all([
      this.client.getExperiment(experimentId).catch(() => null),
      parentId ? this.client.getRun(parentId).catch(() => null) : Promise.resolve(null),
      this.client
        .searchRuns({
          experimentIds: [experimentId],
          filter: `tags.${quoteKey(PARENT_RUN_TAG)} = ${quoteString(this.runId)}`,
          orderBy: ['attributes.start_time DESC'],
          maxResults: 200
        })
        .then(p => p.items)
        .catch(() => [] as IRun[]),
      this.client.searchLoggedModels(experimentId, this.runId).catch(() => [] as ILoggedModel[]),
      this.client
        .searchModelVersions({ filter: `run_id = ${quoteString(this.runId)}`, maxResults: 200 })
        .then(p => this._withAliases(p.items))
        .catch(() => [] as IModelVersion[])
    ]);
    return { run, experiment, parent, children, loggedModels, versions };
  }

  /** Searching versions leaves their aliases out: ask for the first few one by one. */
  private async _withAliases(versions: IModelVersion[]): Promise<IModelVersion[]> {
    return Promise.all(
      versions.map((v, i) =>
        i < 10 ? this.client.getModelVersion(v.name, v.version).catch(() => v) : Promise.resolve(v)
      )
    );
  }

  protected apply(answer: IRunPage): void {
    this._page = answer;
  }

  private _page: IRunPage | null = null;
  /** The run as the last probe read it (the next request's run). */
  private _probed: IRun | null = null;
  private _full = true;
  private _ticks = 0;
  private _histories = new Map<string, { version: string; points: Promise<IMetricPoint[]> }>();
}
