import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { addIcon, Button, deleteIcon, editIcon, launchIcon, searchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, formatRelative, formatTimestamp } from '../format';
import { experimentOwner, ExperimentsModel } from '../models';
import { IExperiment } from '../types';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, useDebounced, useSignal } from './common';
import { SharingSupport } from '../sharing';
import { ShareButton } from './share';

/**
 * Show a refused action with the server's reason (never fail silently).
 */
export async function showRefusal(action: string, error: unknown, trans?: TranslationBundle): Promise<void> {
  const d = describeError(error, trans);
  await showDialog({
    title: action,
    body: (
      <div className="jp-InfinStor-refusal" data-testid="infinstor-refusal">
        <p className="jp-InfinStor-stateTitle">{d.title}</p>
        <p>{d.message}</p>
        <p className="jp-InfinStor-stateHint">{d.hint}</p>
      </div>
    ),
    buttons: [Dialog.okButton({ label: trans ? trans.__('Close') : 'Close' })]
  });
}

export async function createExperimentDialog(model: ExperimentsModel): Promise<string | null> {
  const result = await InputDialog.getText({
    title: 'New experiment',
    label: 'Name',
    placeholder: 'e.g. churn-model',
    okLabel: 'Create'
  });
  if (!result.button.accept || !result.value?.trim()) {
    return null;
  }
  try {
    return await model.create(result.value);
  } catch (error) {
    await showRefusal('Could not create the experiment', error);
    return null;
  }
}

async function renameDialog(model: ExperimentsModel, experiment: IExperiment): Promise<void> {
  const result = await InputDialog.getText({
    title: `Rename experiment "${experiment.name}"`,
    label: 'New name',
    text: experiment.name,
    okLabel: 'Rename'
  });
  if (!result.button.accept || !result.value?.trim() || result.value.trim() === experiment.name) {
    return;
  }
  try {
    await model.rename(experiment.experiment_id, result.value);
  } catch (error) {
    await showRefusal('Could not rename the experiment', error);
  }
}

async function deleteDialog(model: ExperimentsModel, experiment: IExperiment): Promise<void> {
  const result = await showDialog({
    title: 'Delete experiment',
    body: `Delete the experiment "${experiment.name}" and hide its runs? MLflow keeps deleted experiments until they are garbage-collected.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  if (!result.button.accept) {
    return;
  }
  try {
    await model.remove(experiment.experiment_id);
  } catch (error) {
    await showRefusal('Could not delete the experiment', error);
  }
}

/**
 * The experiments list: search (name or MLflow search syntax), creation time, owner,
 * create / rename / delete.
 */
export function ExperimentsList(props: {
  model: ExperimentsModel;
  onOpen: (experiment: IExperiment) => void;
  actions: IMlflowActions;
  /** Shows "Share…" on each experiment when the service shares. */
  sharing?: SharingSupport | null;
}): JSX.Element {
  const { model } = props;
  useSignal(model.changed);
  const [text, setText] = React.useState(model.query);
  const debounced = useDebounced(text, 250);
  React.useEffect(() => {
    void model.setQuery(debounced);
  }, [debounced, model]);

  return (
    <div className="jp-InfinStor-experiments" data-testid="infinstor-experiments">
      <div className="jp-InfinStor-toolbar">
        <label className="jp-InfinStor-search">
          <searchIcon.react tag="span" className="jp-InfinStor-searchIcon" />
          <input
            type="search"
            className="jp-InfinStor-input"
            aria-label="Search experiments (name, or MLflow search syntax)"
            placeholder="Search experiments or name LIKE '%x%'"
            value={text}
            data-testid="infinstor-experiments-search"
            onChange={e => setText(e.target.value)}
            onKeyDown={e => {
              if (e.key === 'Enter') {
                void model.setQuery(text);
              }
            }}
          />
        </label>
        <Button
          minimal
          small
          className="jp-InfinStor-iconButton"
          title="New experiment"
          aria-label="New experiment"
          data-testid="infinstor-experiment-create"
          onClick={() => void createExperimentDialog(model)}
        >
          <addIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
        <RefreshButton label="Refresh experiments" onClick={() => void model.refresh()} />
      </div>
      {model.error && <ErrorState error={model.error} what="Could not list the experiments." onRetry={() => void model.refresh()} />}
      {!model.loaded && !model.error && <LoadingState label="Loading experiments…" />}
      {model.loaded && !model.error && model.experiments.length === 0 && (
        <EmptyState
          title={model.query ? 'No experiment matches this search.' : 'No experiments yet.'}
          hint={model.query ? 'Clear the search, or use MLflow syntax such as tags.team = \'vision\'.' : 'Create one with +, or log a run from a notebook.'}
        />
      )}
      {model.experiments.length > 0 && (
        <ul className="jp-InfinStor-list" aria-label="Experiments" data-testid="infinstor-experiments-list">
          {model.experiments.map(exp => {
            const owner = experimentOwner(exp);
            return (
              <li key={exp.experiment_id} className="jp-InfinStor-listItem" data-testid="infinstor-experiment-item" data-experiment-id={exp.experiment_id}>
                <button
                  className="jp-InfinStor-listMain"
                  title={`Open the runs of ${exp.name}`}
                  onClick={() => props.onOpen(exp)}
                >
                  <span className="jp-InfinStor-listName">{exp.name}</span>
                  <span className="jp-InfinStor-listMeta">
                    <span title={`Created ${formatTimestamp(exp.creation_time)}`}>
                      Created {formatRelative(exp.creation_time)}
                    </span>
                    {owner && <span> · {owner}</span>}
                    <span> · id {exp.experiment_id}</span>
                  </span>
                </button>
                <span className="jp-InfinStor-listActions">
                  <ShareButton
                    support={props.sharing ?? null}
                    target={{ type: 'experiment', id: exp.experiment_id, name: exp.name }}
                    testid="infinstor-experiment-share"
                  />
                  <Button minimal small className="jp-InfinStor-iconButton" title={`Rename ${exp.name}`} aria-label={`Rename ${exp.name}`} onClick={() => void renameDialog(model, exp)}>
                    <editIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                  </Button>
                  <Button minimal small className="jp-InfinStor-iconButton" title={`Delete ${exp.name}`} aria-label={`Delete ${exp.name}`} onClick={() => void deleteDialog(model, exp)}>
                    <deleteIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                  </Button>
                  <Button
                    minimal
                    small
                    className="jp-InfinStor-iconButton"
                    title={`Open ${exp.name} in MLflow UI`}
                    aria-label={`Open ${exp.name} in MLflow UI`}
                    onClick={() => props.actions.openUi(`#/experiments/${exp.experiment_id}/runs`, exp.name)}
                  >
                    <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                  </Button>
                </span>
              </li>
            );
          })}
        </ul>
      )}
      {model.truncated && <p className="jp-InfinStor-hint">Only the first experiments are shown; search to narrow down.</p>}
    </div>
  );
}
