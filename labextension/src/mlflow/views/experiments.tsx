import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { addIcon, Button, deleteIcon, editIcon, launchIcon, searchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { DEFAULT_TRANS, describeError, formatRelative, formatTimestamp } from '../format';
import { experimentOwner, ExperimentsModel } from '../models';
import { IExperiment } from '../types';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, useDebounced, useSignal, useTrans } from './common';
import { SharingSupport } from '../sharing';
import { ShareButton } from './share';

/**
 * Show a refused action with the server's reason (never fail silently).
 */
export async function showRefusal(action: string, error: unknown, trans: TranslationBundle = DEFAULT_TRANS): Promise<void> {
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
    buttons: [Dialog.okButton({ label: trans.__('Close') })]
  });
}

export async function createExperimentDialog(
  model: ExperimentsModel,
  trans: TranslationBundle = DEFAULT_TRANS
): Promise<string | null> {
  const result = await InputDialog.getText({
    title: trans.__('New experiment'),
    label: trans.__('Name'),
    placeholder: trans.__('e.g. churn-model'),
    okLabel: trans.__('Create'),
    cancelLabel: trans.__('Cancel')
  });
  if (!result.button.accept || !result.value?.trim()) {
    return null;
  }
  try {
    return await model.create(result.value);
  } catch (error) {
    await showRefusal(trans.__('Could not create the experiment'), error, trans);
    return null;
  }
}

async function renameDialog(model: ExperimentsModel, experiment: IExperiment, trans: TranslationBundle): Promise<void> {
  const result = await InputDialog.getText({
    title: trans.__('Rename experiment "%1"', experiment.name),
    label: trans.__('New name'),
    text: experiment.name,
    okLabel: trans.__('Rename'),
    cancelLabel: trans.__('Cancel')
  });
  if (!result.button.accept || !result.value?.trim() || result.value.trim() === experiment.name) {
    return;
  }
  try {
    await model.rename(experiment.experiment_id, result.value);
  } catch (error) {
    await showRefusal(trans.__('Could not rename the experiment'), error, trans);
  }
}

async function deleteDialog(model: ExperimentsModel, experiment: IExperiment, trans: TranslationBundle): Promise<void> {
  const result = await showDialog({
    title: trans.__('Delete experiment'),
    body: trans.__(
      'Delete the experiment "%1" and hide its runs? MLflow keeps deleted experiments until they are garbage-collected.',
      experiment.name
    ),
    buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.warnButton({ label: trans.__('Delete') })]
  });
  if (!result.button.accept) {
    return;
  }
  try {
    await model.remove(experiment.experiment_id);
  } catch (error) {
    await showRefusal(trans.__('Could not delete the experiment'), error, trans);
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
  const trans = useTrans();
  useSignal(model.changed);
  const [text, setText] = React.useState(model.query);
  const debounced = useDebounced(text, 250);
  React.useEffect(() => {
    if (debounced !== model.query) {
      void model.setQuery(debounced);
    }
  }, [debounced, model]);

  return (
    <div className="jp-InfinStor-experiments" data-testid="infinstor-experiments">
      <div className="jp-InfinStor-toolbar">
        <label className="jp-InfinStor-search">
          <searchIcon.react tag="span" className="jp-InfinStor-searchIcon" />
          <input
            type="search"
            className="jp-InfinStor-input"
            aria-label={trans.__('Search experiments (name, or MLflow search syntax)')}
            placeholder={trans.__("Search experiments or name LIKE '%x%'")}
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
          title={trans.__('New experiment')}
          aria-label={trans.__('New experiment')}
          data-testid="infinstor-experiment-create"
          onClick={() => void createExperimentDialog(model, trans)}
        >
          <addIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
        <RefreshButton label={trans.__('Refresh experiments')} onClick={() => void model.refresh()} />
      </div>
      {model.error && (
        <ErrorState error={model.error} what={trans.__('Could not list the experiments.')} onRetry={() => void model.refresh()} />
      )}
      {!model.loaded && !model.error && <LoadingState label={trans.__('Loading experiments…')} />}
      {model.loaded && !model.error && model.experiments.length === 0 && (
        <EmptyState
          title={model.query ? trans.__('No experiment matches this search.') : trans.__('No experiments yet.')}
          hint={
            model.query
              ? trans.__("Clear the search, or use MLflow syntax such as tags.team = 'vision'.")
              : trans.__('Create one with +, or log a run from a notebook: it shows here by itself.')
          }
        />
      )}
      {model.experiments.length > 0 && (
        <ul className="jp-InfinStor-list" aria-label={trans.__('Experiments')} data-testid="infinstor-experiments-list">
          {model.experiments.map(exp => {
            const owner = experimentOwner(exp);
            return (
              <li key={exp.experiment_id} className="jp-InfinStor-listItem" data-testid="infinstor-experiment-item" data-experiment-id={exp.experiment_id}>
                <button
                  className="jp-InfinStor-listMain"
                  title={trans.__('Open the runs of %1', exp.name)}
                  onClick={() => props.onOpen(exp)}
                >
                  <span className="jp-InfinStor-listName">{exp.name}</span>
                  <span className="jp-InfinStor-listMeta">
                    <span title={trans.__('Created %1', formatTimestamp(exp.creation_time))}>
                      {trans.__('Created %1', formatRelative(exp.creation_time, undefined, trans))}
                    </span>
                    {owner && <span> · {owner}</span>}
                    <span> · {trans.__('id %1', exp.experiment_id)}</span>
                  </span>
                </button>
                <span className="jp-InfinStor-listActions">
                  <ShareButton
                    support={props.sharing ?? null}
                    target={{ type: 'experiment', id: exp.experiment_id, name: exp.name }}
                    testid="infinstor-experiment-share"
                  />
                  <Button
                    minimal
                    small
                    className="jp-InfinStor-iconButton"
                    title={trans.__('Rename %1', exp.name)}
                    aria-label={trans.__('Rename %1', exp.name)}
                    onClick={() => void renameDialog(model, exp, trans)}
                  >
                    <editIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                  </Button>
                  <Button
                    minimal
                    small
                    className="jp-InfinStor-iconButton"
                    title={trans.__('Delete %1', exp.name)}
                    aria-label={trans.__('Delete %1', exp.name)}
                    onClick={() => void deleteDialog(model, exp, trans)}
                  >
                    <deleteIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                  </Button>
                  <Button
                    minimal
                    small
                    className="jp-InfinStor-iconButton"
                    title={trans.__('Open %1 in MLflow UI', exp.name)}
                    aria-label={trans.__('Open %1 in MLflow UI', exp.name)}
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
      {model.truncated && <p className="jp-InfinStor-hint">{trans.__('Only the first experiments are shown; search to narrow down.')}</p>}
    </div>
  );
}
