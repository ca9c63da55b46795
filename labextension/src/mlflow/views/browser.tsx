import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { PollingModel } from '../../common/pollingModel';
import { IMlflowClient, ISidebarSection } from '../../tokens';
import { formatDuration, formatRelative, formatTimestamp, runDuration, runName } from '../format';
import { ExperimentsModel, NotebookRunsModel, RegisteredModelsModel, RunsModel } from '../models';
import { SharingClient, SharingSupport } from '../sharing';
import { IExperiment } from '../types';
import {
  EmptyState,
  ErrorState,
  IMlflowActions,
  LoadingState,
  RefreshButton,
  StatusBadge,
  Tabs,
  TranslationContext,
  useSignal,
  useTrans
} from './common';
import { ExperimentRuns, ExperimentsList } from './experiments';
import { ModelsPanel } from './models';

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

/**
 * Experiments / This notebook / Models, below the status and user sections of the sidebar.
 */
export function MlflowBrowser(props: {
  model: MlflowBrowserModel;
  actions: IMlflowActions;
  translator?: ITranslator;
}): JSX.Element {
  const trans = React.useMemo(
    () => (props.translator ?? nullTranslator).load('infinstor_jupyterlab'),
    [props.translator]
  );
  return (
    <TranslationContext.Provider value={trans}>
      <BrowserTabs model={props.model} actions={props.actions} />
    </TranslationContext.Provider>
  );
}

function BrowserTabs(props: { model: MlflowBrowserModel; actions: IMlflowActions }): JSX.Element {
  const { model, actions } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const tab = model.tab;
  return (
    <section className="jp-InfinStor-browser" aria-label={trans.__('MLflow')} data-testid="infinstor-mlflow-browser">
      <Tabs<BrowserTab>
        label={trans.__('MLflow')}
        idPrefix="infinstor-browser"
        current={tab}
        onChange={t => (model.tab = t)}
        tabs={[
          { id: 'experiments', label: trans.__('Experiments') },
          { id: 'notebook', label: trans.__('This notebook') },
          { id: 'models', label: trans.__('Models') }
        ]}
      />
      <div
        className="jp-InfinStor-tabPanel"
        role="tabpanel"
        id={`infinstor-browser-panel-${tab}`}
        aria-labelledby={`infinstor-browser-tab-${tab}`}
      >
        {tab === 'experiments' &&
          (model.experiment && model.runs ? (
            <ExperimentRuns
              key={model.experiment.experiment_id}
              experiment={model.experiment}
              model={model.runs}
              actions={actions}
              sharing={model.sharing}
              onBack={() => model.openExperiment(null)}
            />
          ) : (
            <ExperimentsList model={model.experiments} actions={actions} sharing={model.sharing} onOpen={e => model.openExperiment(e)} />
          ))}
        {tab === 'notebook' && <NotebookRuns model={model.notebookRuns} actions={actions} />}
        {tab === 'models' && <ModelsPanel model={model.registeredModels} actions={actions} sharing={model.sharing} />}
      </div>
    </section>
  );
}

function NotebookRuns(props: { model: NotebookRunsModel; actions: IMlflowActions }): JSX.Element {
  const { model, actions } = props;
  const trans = useTrans();
  useSignal(model.changed);
  if (!model.path) {
    return (
      <EmptyState
        testid="infinstor-notebook-none"
        title={trans.__('No notebook is active.')}
        hint={trans.__(
          'Open or select a notebook: the runs it logged (by their mlflow.source.name tag) appear here, newest first.'
        )}
      />
    );
  }
  return (
    <div className="jp-InfinStor-notebookRuns" data-testid="infinstor-notebook-runs">
      <div className="jp-InfinStor-runsTitle">
        <h4 className="jp-InfinStor-runsHeading" title={model.path} data-testid="infinstor-notebook-path">
          {model.path}
        </h4>
        <RefreshButton label={trans.__("Refresh this notebook's runs")} onClick={() => void model.refresh()} />
      </div>
      {model.error && (
        <ErrorState error={model.error} what={trans.__("Could not find this notebook's runs.")} onRetry={() => void model.refresh()} />
      )}
      {!model.loaded && <LoadingState label={trans.__('Looking for runs of this notebook…')} />}
      {model.loaded && !model.error && model.runs.length === 0 && (
        <EmptyState
          title={trans.__('This notebook has not logged any runs yet.')}
          hint={trans.__(
            "Call mlflow.start_run() in it; runs are tagged with the notebook's path automatically and show here by themselves."
          )}
        />
      )}
      {model.runs.length > 0 && (
        <ul className="jp-InfinStor-list" aria-label={trans.__('Runs of this notebook')} data-testid="infinstor-notebook-run-list">
          {model.runs.map(run => (
            <li key={run.info.run_id} className="jp-InfinStor-listItem" data-testid="infinstor-notebook-run" data-run-id={run.info.run_id}>
              <button
                className="jp-InfinStor-listMain"
                onClick={() => actions.openRun(run.info.run_id)}
                title={trans.__('Open run %1', runName(run))}
              >
                <span className="jp-InfinStor-listName">
                  <StatusBadge status={run.info.status} /> {runName(run)}
                </span>
                <span className="jp-InfinStor-listMeta">
                  <span title={formatTimestamp(run.info.start_time)}>{formatRelative(run.info.start_time)}</span>
                  {' · '}
                  {formatDuration(runDuration(run))}
                  {' · '}
                  {trans.__('experiment %1', run.info.experiment_id)}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
