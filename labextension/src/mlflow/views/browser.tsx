import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { MlflowClient } from '../client';
import { formatDuration, formatRelative, formatTimestamp, runDuration, runName } from '../format';
import { ExperimentsModel, NotebookRunsModel, RegisteredModelsModel, RunsModel } from '../models';
import { setOpenedExperiment } from '../selection';
import { SharingClient, SharingSupport } from '../sharing';
import { IExperiment } from '../types';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, StatusBadge, Tabs, useSignal } from './common';
import { ExperimentRuns, ExperimentsList } from './experiments';
import { ModelsPanel } from './models';

export type BrowserTab = 'experiments' | 'notebook' | 'models';

/**
 * State of the MLflow part of the sidebar: which tab, which experiment, and the models behind them.
 */
export class MlflowBrowserModel {
  constructor(options: { client: MlflowClient; pageSize?: number }) {
    this.client = options.client;
    this._pageSize = options.pageSize ?? 100;
    this.experiments = new ExperimentsModel({ client: this.client });
    this.notebookRuns = new NotebookRunsModel({ client: this.client });
    this.registeredModels = new RegisteredModelsModel({ client: this.client });
    this.sharing = new SharingSupport(new SharingClient(this.client));
  }

  readonly client: MlflowClient;
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
      this._changed.emit();
    }
  }
  get experiment(): IExperiment | null {
    return this._experiment;
  }
  get runs(): RunsModel | null {
    return this._runs;
  }

  openExperiment(experiment: IExperiment | null): void {
    this._runs?.dispose();
    this._runs = null;
    this._experiment = experiment;
    setOpenedExperiment(experiment);
    if (experiment) {
      this._runs = new RunsModel({
        client: this.client,
        experimentIds: [experiment.experiment_id],
        pageSize: this._pageSize
      });
      void this._runs.reload();
    }
    this._tab = 'experiments';
    this._changed.emit();
  }

  private _tab: BrowserTab = 'experiments';
  private _experiment: IExperiment | null = null;
  private _runs: RunsModel | null = null;
  private _pageSize: number;
  private _changed = new Signal<this, void>(this);
}

/**
 * Experiments / This notebook / Models, below the status and user sections of the sidebar.
 */
export function MlflowBrowser(props: { model: MlflowBrowserModel; actions: IMlflowActions }): JSX.Element {
  const { model, actions } = props;
  useSignal(model.changed);
  const tab = model.tab;
  return (
    <section className="jp-InfinStor-browser" aria-label="MLflow" data-testid="infinstor-mlflow-browser">
      <Tabs<BrowserTab>
        label="MLflow"
        idPrefix="infinstor-browser"
        current={tab}
        onChange={t => (model.tab = t)}
        tabs={[
          { id: 'experiments', label: 'Experiments' },
          { id: 'notebook', label: 'This notebook' },
          { id: 'models', label: 'Models' }
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
  useSignal(model.changed);
  React.useEffect(() => {
    if (!model.loaded) {
      void model.refresh();
    }
  }, [model]);
  if (!model.path) {
    return (
      <EmptyState
        testid="infinstor-notebook-none"
        title="No notebook is active."
        hint="Open or select a notebook: the runs it logged (by their mlflow.source.name tag) appear here, newest first."
      />
    );
  }
  return (
    <div className="jp-InfinStor-notebookRuns" data-testid="infinstor-notebook-runs">
      <div className="jp-InfinStor-runsTitle">
        <h4 className="jp-InfinStor-runsHeading" title={model.path} data-testid="infinstor-notebook-path">
          {model.path}
        </h4>
        <RefreshButton label="Refresh this notebook's runs" onClick={() => void model.refresh()} />
      </div>
      {model.error && <ErrorState error={model.error} what="Could not find this notebook's runs." onRetry={() => void model.refresh()} />}
      {model.loading && !model.runs.length && <LoadingState label="Looking for runs of this notebook…" />}
      {model.loaded && !model.loading && !model.error && model.runs.length === 0 && (
        <EmptyState
          title="This notebook has not logged any runs yet."
          hint="Call mlflow.start_run() in it; runs are tagged with the notebook's path automatically."
        />
      )}
      {model.runs.length > 0 && (
        <ul className="jp-InfinStor-list" aria-label="Runs of this notebook">
          {model.runs.map(run => (
            <li key={run.info.run_id} className="jp-InfinStor-listItem" data-testid="infinstor-notebook-run">
              <button className="jp-InfinStor-listMain" onClick={() => actions.openRun(run.info.run_id)} title={`Open run ${runName(run)}`}>
                <span className="jp-InfinStor-listName">
                  <StatusBadge status={run.info.status} /> {runName(run)}
                </span>
                <span className="jp-InfinStor-listMeta">
                  <span title={formatTimestamp(run.info.start_time)}>{formatRelative(run.info.start_time)}</span>
                  {' · '}
                  {formatDuration(runDuration(run))}
                  {' · experiment '}
                  {run.info.experiment_id}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
