/**
 * One run with what surrounds it: its experiment, parent and children, the models it logged
 * (MLflow 3 logged models) and the registered versions made from it. Polled while the run is
 * active and its page visible: the run every tick, the rest every few ticks.
 */
import { Poll } from '@lumino/polling';

import { PollingModel } from '../common/pollingModel';
import { MlflowClient } from '../mlflow/client';
import { isActive, PARENT_RUN_TAG, quoteKey, quoteString, tagMap } from '../mlflow/format';
import { IExperiment, ILoggedModel, IMetricPoint, IModelVersion, IRun } from '../mlflow/types';

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

/** Everything around the run is asked again every this many ticks. */
const SURROUNDINGS_EVERY = 6;

export class RunPageModel extends PollingModel<IRunPage> {
  constructor(options: { client: MlflowClient; runId: string; interval?: number }) {
    super({ name: `infinstor-jupyterlab:run-${options.runId}`, interval: options.interval ?? 5000, maxInterval: 60000 });
    this.client = options.client;
    this.runId = options.runId;
  }

  readonly client: MlflowClient;
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

  set visible(value: boolean) {
    this._visible = value;
  }

  /** Load now (the first time, and the refresh button). */
  reload(): Promise<void> {
    this._full = true;
    return this.load().catch(() => undefined);
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

  protected standby(): boolean | Poll.Standby {
    return !this._visible || !this.run || !isActive(this.run.info.status) ? true : 'when-hidden';
  }

  protected pollInterval(): number {
    return 5000;
  }

  protected async request(): Promise<IRunPage> {
    const run = await this.client.getRun(this.runId);
    const full = this._full || !this._page || ++this._ticks % SURROUNDINGS_EVERY === 0 || run.info.status !== this._page.run.info.status;
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
  private _visible = true;
  private _full = true;
  private _ticks = 0;
  private _histories = new Map<string, { version: string; points: Promise<IMetricPoint[]> }>();
}
