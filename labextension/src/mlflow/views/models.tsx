import { Button, launchIcon, searchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { formatRelative, formatTimestamp, tagMap } from '../format';
import { RegisteredModelsModel, versionAliases } from '../models';
import { IModelVersion, IRegisteredModel } from '../types';
import { SharingSupport } from '../sharing';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, useDebounced, useSignal } from './common';
import { ShareButton } from './share';

/**
 * Registered models (searchable) and, expanded, their versions.
 */
export function ModelsPanel(props: {
  model: RegisteredModelsModel;
  actions: IMlflowActions;
  /** Shows "Share…" on each model when the service shares. */
  sharing?: SharingSupport | null;
}): JSX.Element {
  const { model } = props;
  useSignal(model.changed);
  const [text, setText] = React.useState(model.query);
  const debounced = useDebounced(text, 250);
  const [open, setOpen] = React.useState<string | null>(null);
  React.useEffect(() => {
    void model.setQuery(debounced);
  }, [debounced, model]);

  return (
    <div className="jp-InfinStor-models" data-testid="infinstor-models">
      <div className="jp-InfinStor-toolbar">
        <label className="jp-InfinStor-search">
          <searchIcon.react tag="span" className="jp-InfinStor-searchIcon" />
          <input
            type="search"
            className="jp-InfinStor-input"
            aria-label="Search registered models"
            placeholder="Search models"
            value={text}
            data-testid="infinstor-models-search"
            onChange={e => setText(e.target.value)}
          />
        </label>
        <RefreshButton label="Refresh models" onClick={() => void model.refresh()} />
      </div>
      {model.error && <ErrorState error={model.error} what="Could not list the registered models." onRetry={() => void model.refresh()} />}
      {!model.loaded && !model.error && <LoadingState label="Loading models…" />}
      {model.loaded && !model.error && model.models.length === 0 && (
        <EmptyState
          title={model.query ? 'No registered model matches.' : 'No registered models yet.'}
          hint="Register a model from a run's detail (Register model) or with mlflow.register_model()."
        />
      )}
      <ul className="jp-InfinStor-list" aria-label="Registered models" data-testid="infinstor-models-list">
        {model.models.map(m => (
          <li key={m.name} className="jp-InfinStor-modelItem" data-testid="infinstor-model-item" data-model-name={m.name}>
            <div className="jp-InfinStor-listItem">
              <button
                className="jp-InfinStor-listMain"
                aria-expanded={open === m.name}
                onClick={() => setOpen(open === m.name ? null : m.name)}
              >
                <span className="jp-InfinStor-listName">
                  <span aria-hidden="true">{open === m.name ? '▾ ' : '▸ '}</span>
                  {m.name}
                </span>
                <span className="jp-InfinStor-listMeta">
                  {(m.latest_versions ?? []).length ? `latest v${latestVersion(m)} · ` : ''}
                  updated {formatRelative(m.last_updated_timestamp)}
                  {(m.aliases ?? []).length ? ` · ${m.aliases!.map(a => `@${a.alias}`).join(' ')}` : ''}
                </span>
              </button>
              <span className="jp-InfinStor-listActions">
                <ShareButton
                  support={props.sharing ?? null}
                  target={{ type: 'registered_model', id: m.name, name: m.name }}
                  testid="infinstor-model-share"
                />
                <Button
                  minimal
                  small
                  className="jp-InfinStor-iconButton"
                  title={`Open ${m.name} in MLflow UI`}
                  aria-label={`Open ${m.name} in MLflow UI`}
                  onClick={() => props.actions.openUi(`#/models/${encodeURIComponent(m.name)}`, m.name)}
                >
                  <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                </Button>
              </span>
            </div>
            {open === m.name && <ModelVersions model={model} registered={m} actions={props.actions} />}
          </li>
        ))}
      </ul>
    </div>
  );
}

function latestVersion(m: IRegisteredModel): string {
  return (m.latest_versions ?? []).reduce((max, v) => (Number(v.version) > Number(max) ? v.version : max), '0');
}

function ModelVersions(props: { model: RegisteredModelsModel; registered: IRegisteredModel; actions: IMlflowActions }): JSX.Element {
  const { registered } = props;
  const [versions, setVersions] = React.useState<IModelVersion[] | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const load = React.useCallback(() => {
    setError(null);
    props.model.versions(registered.name).then(setVersions, setError);
  }, [registered.name, props.model]);
  React.useEffect(load, [load]);
  const tags = tagMap(registered.tags);
  return (
    <div className="jp-InfinStor-versions" data-testid="infinstor-model-versions">
      {registered.description && <p className="jp-InfinStor-description">{registered.description}</p>}
      {Object.keys(tags).length > 0 && (
        <p className="jp-InfinStor-chips" aria-label="Model tags">
          {Object.entries(tags).map(([k, v]) => (
            <span key={k} className="jp-InfinStor-chip">
              {k}={v}
            </span>
          ))}
        </p>
      )}
      {error ? <ErrorState error={error} what="Could not list the versions." compact onRetry={load} /> : null}
      {!versions && !error && <LoadingState label="Loading versions…" />}
      {versions && versions.length === 0 && <EmptyState title="No versions yet." />}
      {versions && versions.length > 0 && (
        <table className="jp-InfinStor-table" aria-label={`Versions of ${registered.name}`}>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Aliases</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Source run</th>
            </tr>
          </thead>
          <tbody>
            {versions.map(v => {
              const vtags = tagMap(v.tags);
              return (
                <tr key={v.version} data-testid="infinstor-model-version" data-version={v.version}>
                  <td>
                    <button
                      className="jp-InfinStor-linkButton"
                      title={`Open version ${v.version} in MLflow UI`}
                      onClick={() =>
                        props.actions.openUi(
                          `#/models/${encodeURIComponent(v.name)}/versions/${v.version}`,
                          `${v.name} v${v.version}`
                        )
                      }
                    >
                      v{v.version}
                    </button>
                    {v.description && <div className="jp-InfinStor-hint">{v.description}</div>}
                    {Object.keys(vtags).length > 0 && (
                      <div className="jp-InfinStor-chips">
                        {Object.entries(vtags).map(([k, val]) => (
                          <span key={k} className="jp-InfinStor-chip" title="tag">
                            {k}={val}
                          </span>
                        ))}
                      </div>
                    )}
                  </td>
                  <td>
                    {versionAliases(registered, v).map(a => (
                      <span key={a} className="jp-InfinStor-chip jp-InfinStor-alias">
                        @{a}
                      </span>
                    ))}
                  </td>
                  <td title={v.status_message || undefined}>
                    {(v.status ?? '').replace(/_/g, ' ').toLowerCase()}
                    {v.current_stage && v.current_stage !== 'None' ? ` · ${v.current_stage}` : ''}
                  </td>
                  <td title={formatTimestamp(v.creation_timestamp)}>{formatRelative(v.creation_timestamp)}</td>
                  <td>
                    {v.run_id ? (
                      <button
                        className="jp-InfinStor-linkButton"
                        title={`Open the run that produced version ${v.version}`}
                        data-testid="infinstor-version-run"
                        onClick={() => props.actions.openRun(v.run_id!)}
                      >
                        {v.run_id.slice(0, 8)}
                      </button>
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
