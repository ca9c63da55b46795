/**
 * One runs model per experiment, shared by every view of its runs (the runs tab and the
 * sidebar's compact list): one set of requests, one poll. Its filter and sort follow the
 * experiment's saved view settings.
 */
import { IMlflowClient } from '../tokens';
import { ExperimentRunsModel } from './model';
import { RunsViewStateStore } from './viewState';

export class RunsModelRegistry {
  constructor(options: { client: IMlflowClient; store: RunsViewStateStore; modelOptions?: Partial<ExperimentRunsModel.IOptions> }) {
    this.client = options.client;
    this.store = options.store;
    this._modelOptions = options.modelOptions ?? {};
    this.store.changed.connect((_, experimentId) => {
      const entry = this._entries.get(experimentId);
      if (entry) {
        const { filter, sort } = this.store.get(experimentId);
        entry.model.setQuery({ filter, sort });
      }
    });
  }

  readonly client: IMlflowClient;
  readonly store: RunsViewStateStore;

  /** The model of an experiment's runs; give it back with `release` when the view goes. */
  acquire(experimentId: string): ExperimentRunsModel {
    let entry = this._entries.get(experimentId);
    if (!entry) {
      const { filter, sort } = this.store.get(experimentId);
      entry = {
        model: new ExperimentRunsModel({
          ...this._modelOptions,
          client: this.client,
          experimentId,
          query: { filter, sort }
        }),
        users: 0
      };
      this._entries.set(experimentId, entry);
    }
    entry.users++;
    return entry.model;
  }

  release(experimentId: string): void {
    const entry = this._entries.get(experimentId);
    if (entry && --entry.users <= 0) {
      entry.model.dispose();
      this._entries.delete(experimentId);
    }
  }

  /**
   * The longest interval the models' live checks back off to while nothing changes, in ms (the
   * `refreshInterval` setting): for the models in use and those made later.
   */
  get idleInterval(): number | undefined {
    return this._modelOptions.idleInterval;
  }
  set idleInterval(value: number | undefined) {
    this._modelOptions = { ...this._modelOptions, idleInterval: value };
    if (value !== undefined) {
      for (const { model } of this._entries.values()) {
        model.idleInterval = value;
      }
    }
  }

  /** Reload every model in use (the refresh command). */
  reloadAll(): void {
    for (const { model } of this._entries.values()) {
      model.reload();
    }
  }

  private _entries = new Map<string, { model: ExperimentRunsModel; users: number }>();
  private _modelOptions: Partial<ExperimentRunsModel.IOptions>;
}
