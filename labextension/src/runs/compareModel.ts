/**
 * Runs side by side: loaded once by id, then, while the view is visible, checked with one
 * search by id (backing off while nothing changes; at once after a write through the lab).
 * Metric histories come one metric at a time for every run at once (MLflow's bulk history).
 */
import { quoteString } from '../mlflow/format';
import { ILiveOptions, LiveModel, runSignature } from '../mlflow/models';
import { IMetricPoint, IRun } from '../mlflow/types';
import { IMlflowClient } from '../tokens';

/** Points a run at most per chart (MLflow samples longer histories, keeping the ends). */
export const COMPARE_HISTORY_POINTS = 1000;

export class CompareModel extends LiveModel<IRun[]> {
  constructor(options: { client: IMlflowClient; runIds: string[] } & ILiveOptions) {
    super('compare', options);
    this.runIds = [...new Set(options.runIds)];
  }

  readonly runIds: string[];

  /** The runs, in the order they were asked for. */
  get runs(): IRun[] {
    return this._runs;
  }

  reload(): Promise<void> {
    return this.refresh();
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

  protected apply(answer: IRun[], first: boolean): boolean {
    const changed = first || answer.map(runSignature).join('\n') !== this._runs.map(runSignature).join('\n');
    this._runs = answer;
    return changed;
  }

  private _runs: IRun[] = [];
  private _histories = new Map<string, { version: string; points: Promise<Map<string, IMetricPoint[]>> }>();
}
