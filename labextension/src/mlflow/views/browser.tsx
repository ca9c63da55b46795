import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { ExperimentRunsModel } from '../../runs/model';
import type { IRunsViews } from '../../runs/plugin';
import { RunsList } from '../../runs/RunsList';
import { TransContext } from '../../runs/trans';
import { MlflowClient } from '../client';
import { DEFAULT_TRANS, formatDuration, formatRelative, formatTimestamp, runDuration, runName } from '../format';
import { ExperimentsModel, NotebookRunsModel, RegisteredModelsModel } from '../models';
import { setOpenedExperiment } from '../selection';
import { SharingClient, SharingSupport } from '../sharing';
import { IExperiment } from '../types';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, StatusBadge, Tabs, useSignal } from './common';
import { ExperimentsList } from './experiments';
import { ShareButton } from './share';
import { ModelsPanel } from './models';

export type BrowserTab = 'experiments' | 'notebook' | 'models';

/**
 * State of the MLflow part of the sidebar: which tab, which experiment, and the models behind them.
 */
export class MlflowBrowserModel {
  constructor(options: { client: MlflowClient; runs: IRunsViews; trans?: TranslationBundle }) {
    this.client = options.client;
    this.runsViews = options.runs;
    this.trans = options.trans ?? DEFAULT_TRANS;
    this.experiments = new ExperimentsModel({ client: this.client });
    this.notebookRuns = new NotebookRunsModel({ client: this.client });
    this.registeredModels = new RegisteredModelsModel({ client: this.client });
    this.sharing = new SharingSupport(new SharingClient(this.client));
  }

  readonly client: MlflowClient;
  /** The runs models (shared with the runs tabs) and their saved view settings. */
  readonly runsViews: IRunsViews;
  readonly trans: TranslationBundle;
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
  /** The runs of the open experiment (the compact list). */
  get runs(): ExperimentRunsModel | null {
    return this._runs;
  }

  /** Show an experiment's runs in the sidebar's compact list (null: back to the experiments). */
  openExperiment(experiment: IExperiment | null): void {
    if (this._experiment && this._runs) {
      this.runsViews.registry.release(this._experiment.experiment_id);
    }
    this._runs = null;
    this._experiment = experiment;
    setOpenedExperiment(experiment);
    if (experiment) {
      this._runs = this.runsViews.registry.acquire(experiment.experiment_id);
    }
    this._tab = 'experiments';
    this._changed.emit();
  }

  private _tab: BrowserTab = 'experiments';
  private _experiment: IExperiment | null = null;
  private _runs: ExperimentRunsModel | null = null;
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
            <TransContext.Provider value={model.trans}>
              <RunsList
                key={model.experiment.experiment_id}
                experiment={model.experiment}
                model={model.runs}
                store={model.runsViews.store}
                actions={actions}
                onBack={() => model.openExperiment(null)}
                extra={
                  <ShareButton
                    support={model.sharing}
                    target={{ type: 'experiment', id: model.experiment.experiment_id, name: model.experiment.name }}
                    testid="infinstor-runs-share"
                  />
                }
              />
            </TransContext.Provider>
          ) : (
            <ExperimentsList
              model={model.experiments}
              actions={actions}
              sharing={model.sharing}
              onOpen={e => {
                // The compact list here, the full table in a tab.
                model.openExperiment(e);
                actions.openRuns(e.experiment_id, e.name);
              }}
            />
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
