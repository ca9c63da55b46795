/**
 * Runs side by side: loaded once by id, then (while one of them is active and the view
 * visible) refreshed with one search by id. Metric histories come one metric at a time for
 * every run at once (MLflow's bulk history).
 */
import { Poll } from '@lumino/polling';

import { PollingModel } from '../common/pollingModel';
import { MlflowClient } from '../mlflow/client';
import { isActive, quoteString } from '../mlflow/format';
import { IMetricPoint, IRun } from '../mlflow/types';

/** Points a run at most per chart (MLflow samples longer histories, keeping the ends). */
export const COMPARE_HISTORY_POINTS = 1000;

export class CompareModel extends PollingModel<IRun[]> {
  constructor(options: { client: MlflowClient; runIds: string[]; interval?: number }) {
    super({ name: 'infinstor-jupyterlab:compare', interval: options.interval ?? 10000, maxInterval: 60000 });
    this.client = options.client;
    this.runIds = [...new Set(options.runIds)];
  }

  readonly client: MlflowClient;
  readonly runIds: string[];

  /** The runs, in the order they were asked for. */
  get runs(): IRun[] {
    return this._runs;
  }

  set visible(value: boolean) {
    this._visible = value;
  }

  reload(): Promise<void> {
    return this.load().catch(() => undefined);
  }

  /** One metric's history for every run (cached until a run's latest value of it changes). */
  histories(key: string): Promise<Map<string, IMetricPoint[]>> {
    const version = this._runs
      .map(r => {
        const m = r.data.metrics?.find(x => x.key === key);
        return m ? `${m.step}:${m.value}` : '';
      })
      .join('|');
    const cached = this._histories.get(key);
    if (cached && cached.version === version) {
      return cached.points;
    }
    const ids = this._runs.filter(r => r.data.metrics?.some(m => m.key === key)).map(r => r.info.run_id);
    const points = this.client.getMetricHistoryBulk(ids, key, COMPARE_HISTORY_POINTS);
    points.catch(() => this._histories.delete(key));
    this._histories.set(key, { version, points });
    return points;
  }

  protected standby(): boolean | Poll.Standby {
    return !this._visible || !this._runs.some(r => isActive(r.info.status)) ? true : 'when-hidden';
  }

  protected pollInterval(): number {
    return 10000;
  }

  protected async request(): Promise<IRun[]> {
    if (!this._runs.length) {
      return Promise.all(this.runIds.map(id => this.client.getRun(id)));
    }
    // Later: one search by id over the runs' experiments.
    const experiments = [...new Set(this._runs.map(r => r.info.experiment_id))];
    const found: IRun[] = [];
    for (let i = 0; i < this.runIds.length; i += 100) {
      const page = await this.client.searchRuns({
        experimentIds: experiments,
        filter: `attributes.run_id IN (${this.runIds.slice(i, i + 100).map(quoteString).join(', ')})`,
        maxResults: 100,
        viewType: 'ALL'
      });
      found.push(...page.items);
    }
    const byId = new Map(found.map(r => [r.info.run_id, r]));
    return this._runs.map(r => byId.get(r.info.run_id) ?? r);
  }

  protected apply(answer: IRun[]): void {
    this._runs = answer;
  }

  private _runs: IRun[] = [];
  private _visible = true;
  private _histories = new Map<string, { version: string; points: Promise<Map<string, IMetricPoint[]>> }>();
}
