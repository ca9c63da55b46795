/**
 * State of the MLflow part of the sidebar (no DOM here; views/browser.tsx renders it).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { PollingModel } from '../common/pollingModel';
import { ExperimentRunsModel } from '../runs/model';
import type { IRunsViews } from '../runs/plugin';
import { IMlflowClient, ISidebarSection } from '../tokens';
import { ExperimentsModel, NotebookRunsModel, RegisteredModelsModel } from './models';
import { SharingClient, SharingSupport } from './sharing';
import { IExperiment } from './types';

export type BrowserTab = 'experiments' | 'notebook' | 'models';

/**
 * State of the MLflow part of the sidebar: which tab, which experiment, and the live models
 * behind them. Only the models on screen ask the server anything: the one of the current tab,
 * while the sidebar is visible (`sidebarVisible`). An open experiment's runs model is the one
 * its runs tab shares (from the runs views' registry).
 *
 * It is the sidebar's section for the header's Refresh and the footer's "Last checked".
 */
export class MlflowBrowserModel implements ISidebarSection {
  constructor(options: MlflowBrowserModel.IOptions) {
    this.client = options.client;
    this.runsViews = options.runs;
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
  /** The runs models (shared with the runs tabs) and their saved view settings. */
  readonly runsViews: IRunsViews;
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
  /** The runs of the open experiment (the compact list). */
  get runs(): ExperimentRunsModel | null {
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
    for (const model of this._lists()) {
      model.idleInterval = value;
    }
    this.runsViews.registry.idleInterval = value;
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
   * Refresh every list: the one on screen now, the others when next shown; and every
   * experiment's runs (the sidebar's list and the runs tabs).
   */
  async refresh(): Promise<void> {
    await Promise.all([...this._lists().map(model => model.refresh()), this.runsViews.registry.reloadAll()]);
  }

  /** Show an experiment's runs in the sidebar's compact list (null: back to the experiments). */
  openExperiment(experiment: IExperiment | null): void {
    if (this._experiment && this._runs) {
      this._runs.setVisible(this, false);
      this.runsViews.registry.release(this._experiment.experiment_id);
    }
    this._runs = null;
    this._experiment = experiment;
    if (experiment) {
      this._runs = this.runsViews.registry.acquire(experiment.experiment_id);
    }
    this._tab = 'experiments';
    this._updateVisibility();
    this._changed.emit();
  }

  dispose(): void {
    this.openExperiment(null);
    for (const model of this._lists()) {
      model.dispose();
    }
    Signal.clearData(this);
  }

  /** The sidebar's own lists (the runs model belongs to the registry). */
  private _lists(): Array<PollingModel<unknown>> {
    return [this.experiments, this.notebookRuns, this.registeredModels];
  }

  private _updateVisibility(): void {
    const shown = this._sidebarVisible ? this.current : null;
    for (const model of this._lists()) {
      model.visible = model === shown;
    }
    // The runs model has other viewers (its runs tab): this sidebar is one of them.
    this._runs?.setVisible(this, this._runs === shown);
  }

  private _tab: BrowserTab = 'experiments';
  private _experiment: IExperiment | null = null;
  private _runs: ExperimentRunsModel | null = null;
  private _idleInterval: number | undefined;
  private _sidebarVisible: boolean;
  private _changed = new Signal<this, void>(this);
}

export namespace MlflowBrowserModel {
  export interface IOptions {
    client: IMlflowClient;
    /** The runs views' registry of runs models and their saved view settings. */
    runs: IRunsViews;
    /** The lists' back-off ceiling while nothing changes, in ms (the `refreshInterval` setting). */
    idleInterval?: number;
    /** Whether the sidebar is on screen at first (default true). */
    sidebarVisible?: boolean;
  }
}

