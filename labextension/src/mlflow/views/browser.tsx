import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import React from 'react';

import { RunsList } from '../../runs/RunsList';
import { BrowserTab, MlflowBrowserModel } from '../browserModel';
import { formatDuration, formatRelative, formatTimestamp, runDuration, runName } from '../format';
import { NotebookRunsModel } from '../models';
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
import { ExperimentsList } from './experiments';
import { ModelsPanel } from './models';
import { ShareButton } from './share';

// The model lives apart from the views (no DOM); re-exported for callers of the earlier module.
export { BrowserTab, MlflowBrowserModel };

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
                  <span title={formatTimestamp(run.info.start_time)}>{formatRelative(run.info.start_time, undefined, trans)}</span>
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
