/**
 * State of the MLflow part of the sidebar (no DOM here; views/browser.tsx renders it).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { PollingModel } from '../common/pollingModel';
import { IMlflowClient, ISidebarSection } from '../tokens';
import { ExperimentsModel, NotebookRunsModel, RegisteredModelsModel, RunsModel } from './models';
import { SharingClient, SharingSupport } from './sharing';
import { IExperiment } from './types';

export type BrowserTab = 'experiments' | 'notebook' | 'models';

/**
 * State of the MLflow part of the sidebar: which tab, which experiment, and the live models
 * behind them. Only the models on screen ask the server anything: the one of the current tab,
 * while the sidebar is visible (`sidebarVisible`).
 *
 * It is the sidebar's section for the header's Refresh and the footer's "Last checked".
 */
export class MlflowBrowserModel implements ISidebarSection {
  constructor(options: MlflowBrowserModel.IOptions) {
    this.client = options.client;
    this._pageSize = options.pageSize ?? 100;
    this._idleInterval = options.idleInterval;
    this._sidebarVisible = options.sidebarVisible ?? true;
    const live = { client: this.client, idleInterval: this._idleInterval, visible: false };
    this.experiments = new ExperimentsModel(live);
    this.notebookRuns = new NotebookRunsModel(live);
    this.registeredModels = new RegisteredModelsModel(live);
    this.sharing = new SharingSupport(new SharingClient(this.client));
    this._updateVisibility();
  }

  readonly client: IMlflowClient;
  readonly experiments: ExperimentsModel;
  readonly notebookRuns: NotebookRunsModel;
  readonly registeredModels: RegisteredModelsModel;
  /** Whether the tracking service shares (the "Share…" buttons show only then). */
  readonly sharing: SharingSupport;

  get changed(): ISignal<this, void> {
    return this._changed;
  }
  get tab(): BrowserTab {
    return this._tab;
  }
  set tab(tab: BrowserTab) {
    if (tab !== this._tab) {
      this._tab = tab;
      this._updateVisibility();
      this._changed.emit();
    }
  }
  get experiment(): IExperiment | null {
    return this._experiment;
  }
  get runs(): RunsModel | null {
    return this._runs;
  }

  /** Whether the sidebar showing the browser is on screen. */
  get sidebarVisible(): boolean {
    return this._sidebarVisible;
  }
  set sidebarVisible(value: boolean) {
    if (value !== this._sidebarVisible) {
      this._sidebarVisible = value;
      this._updateVisibility();
    }
  }

  /** The longest interval the lists wait between two checks while nothing changes, in ms. */
  set idleInterval(value: number) {
    this._idleInterval = value;
    for (const model of this._models()) {
      model.idleInterval = value;
    }
  }

  /** The model of what is on screen now. */
  get current(): PollingModel<unknown> {
    if (this._tab === 'notebook') {
      return this.notebookRuns;
    }
    if (this._tab === 'models') {
      return this.registeredModels;
    }
    return this._runs ?? this.experiments;
  }

  /** When what is on screen was last checked (see {@link ISidebarSection}). */
  get checkedAt(): number {
    return this.current.checkedAt;
  }

  /**
   * Refresh every list: the one on screen now, the others when next shown.
   */
  async refresh(): Promise<void> {
    await Promise.all(
      this._models().map(model => (model === this._runs ? this._runs.reload() : model.refresh()))
    );
  }

  openExperiment(experiment: IExperiment | null): void {
    this._runs?.dispose();
    this._runs = null;
    this._experiment = experiment;
    if (experiment) {
      this._runs = new RunsModel({
        client: this.client,
        experimentIds: [experiment.experiment_id],
        pageSize: this._pageSize,
        idleInterval: this._idleInterval
      });
      void this._runs.reload();
    }
    this._tab = 'experiments';
    this._updateVisibility();
    this._changed.emit();
  }

  dispose(): void {
    for (const model of this._models()) {
      model.dispose();
    }
    Signal.clearData(this);
  }

  private _models(): Array<PollingModel<unknown> & { refresh(): Promise<void> }> {
    const models: Array<PollingModel<unknown>> = [this.experiments, this.notebookRuns, this.registeredModels];
    if (this._runs) {
      models.push(this._runs);
    }
    return models;
  }

  private _updateVisibility(): void {
    const shown = this._sidebarVisible ? this.current : null;
    for (const model of this._models()) {
      model.visible = model === shown;
    }
  }

  private _tab: BrowserTab = 'experiments';
  private _experiment: IExperiment | null = null;
  private _runs: RunsModel | null = null;
  private _pageSize: number;
  private _idleInterval: number | undefined;
  private _sidebarVisible: boolean;
  private _changed = new Signal<this, void>(this);
}

export namespace MlflowBrowserModel {
  export interface IOptions {
    client: IMlflowClient;
    pageSize?: number;
    /** The lists' back-off ceiling while nothing changes, in ms (the `refreshInterval` setting). */
    idleInterval?: number;
    /** Whether the sidebar is on screen at first (default true). */
    sidebarVisible?: boolean;
  }
}

