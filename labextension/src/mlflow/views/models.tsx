import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Button, closeIcon, launchIcon, ReactWidget, searchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { formatRelative, formatTimestamp, tagMap } from '../format';
import { ModelVersionsModel, RegisteredModelsModel } from '../models';
import { IModelVersion, IRegisteredModel } from '../types';
import { SharingSupport } from '../sharing';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, useDebounced, useSignal, useTrans } from './common';
import { ShareButton } from './share';

/**
 * Registered models (searchable) and, expanded, their versions: aliases, tags, description,
 * status and source run, with "Set alias…" (promote) and alias removal. Live while shown.
 */
export function ModelsPanel(props: {
  model: RegisteredModelsModel;
  actions: IMlflowActions;
  /** Shows "Share…" on each model when the service shares. */
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
  const open = model.expanded?.name ?? null;

  return (
    <div className="jp-InfinStor-models" data-testid="infinstor-models">
      <div className="jp-InfinStor-toolbar">
        <label className="jp-InfinStor-search">
          <searchIcon.react tag="span" className="jp-InfinStor-searchIcon" />
          <input
            type="search"
            className="jp-InfinStor-input"
            aria-label={trans.__('Search registered models')}
            placeholder={trans.__('Search models')}
            value={text}
            data-testid="infinstor-models-search"
            onChange={e => setText(e.target.value)}
          />
        </label>
        <RefreshButton
          label={trans.__('Refresh models')}
          onClick={() => void Promise.all([model.refresh(), model.expanded?.refresh()])}
        />
      </div>
      {model.error && (
        <ErrorState error={model.error} what={trans.__('Could not list the registered models.')} onRetry={() => void model.refresh()} />
      )}
      {!model.loaded && !model.error && <LoadingState label={trans.__('Loading models…')} />}
      {model.loaded && !model.error && model.models.length === 0 && (
        <EmptyState
          title={model.query ? trans.__('No registered model matches.') : trans.__('No registered models yet.')}
          hint={trans.__("Register a model from a run's detail (Register model) or with mlflow.register_model().")}
        />
      )}
      <ul className="jp-InfinStor-list" aria-label={trans.__('Registered models')} data-testid="infinstor-models-list">
        {model.models.map(m => (
          <li key={m.name} className="jp-InfinStor-modelItem" data-testid="infinstor-model-item" data-model-name={m.name}>
            <div className="jp-InfinStor-listItem">
              <button
                className="jp-InfinStor-listMain"
                aria-expanded={open === m.name}
                onClick={() => model.expand(open === m.name ? null : m.name)}
              >
                <span className="jp-InfinStor-listName">
                  <span aria-hidden="true">{open === m.name ? '▾ ' : '▸ '}</span>
                  {m.name}
                </span>
                <span className="jp-InfinStor-listMeta">
                  {(m.latest_versions ?? []).length ? `${trans.__('latest v%1', latestVersion(m))} · ` : ''}
                  {trans.__('updated %1', formatRelative(m.last_updated_timestamp, undefined, trans))}
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
                  title={trans.__('Open %1 in MLflow UI', m.name)}
                  aria-label={trans.__('Open %1 in MLflow UI', m.name)}
                  onClick={() => props.actions.openUi(`#/models/${encodeURIComponent(m.name)}`, m.name)}
                >
                  <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
                </Button>
              </span>
            </div>
            {open === m.name && model.expanded && <ModelVersions model={model.expanded} actions={props.actions} />}
          </li>
        ))}
      </ul>
    </div>
  );
}

function latestVersion(m: IRegisteredModel): string {
  return (m.latest_versions ?? []).reduce((max, v) => (Number(v.version) > Number(max) ? v.version : max), '0');
}

/** A version's registration status, in words. */
export function versionStatusLabel(status: string | undefined, trans: TranslationBundle): string {
  switch (status) {
    case 'READY':
      return trans.__('Ready');
    case 'PENDING_REGISTRATION':
      return trans.__('Pending registration');
    case 'FAILED_REGISTRATION':
      return trans.__('Registration failed');
    default:
      return status ? status.replace(/_/g, ' ').toLowerCase() : trans.__('Unknown');
  }
}

function ModelVersions(props: { model: ModelVersionsModel; actions: IMlflowActions }): JSX.Element {
  const { model } = props;
  const trans = useTrans();
  useSignal(model.changed);
  // The last refused (or failed) alias change, shown on its version.
  const [refusal, setRefusal] = React.useState<{ version: string; what: string; error: unknown } | null>(null);
  const [busy, setBusy] = React.useState(false);
  const registered = model.model;
  const tags = tagMap(registered?.tags);

  const act = async (version: string, what: string, change: () => Promise<void>) => {
    setBusy(true);
    setRefusal(null);
    try {
      await change();
    } catch (error) {
      setRefusal({ version, what, error });
    } finally {
      setBusy(false);
    }
  };

  const promote = async (version: IModelVersion) => {
    const known = [...new Set((registered?.aliases ?? []).map(a => a.alias))].sort();
    const alias = await promoteDialog(model, version, known, trans);
    if (alias) {
      await act(version.version, trans.__('Could not set the alias @%1 on v%2.', alias, version.version), () =>
        model.setAlias(alias, version.version)
      );
    }
  };

  const removeAlias = async (version: IModelVersion, alias: string) => {
    const result = await showDialog({
      title: trans.__('Remove an alias'),
      body: trans.__('Remove the alias @%1 from %2 v%3? Code that loads models:/%2@%1 stops finding it.', alias, model.name, version.version),
      buttons: [Dialog.cancelButton({ label: trans.__('Keep') }), Dialog.warnButton({ label: trans.__('Remove') })]
    });
    if (result.button.accept) {
      await act(version.version, trans.__('Could not remove the alias @%1.', alias), () => model.deleteAlias(alias));
    }
  };

  return (
    <div className="jp-InfinStor-versions" data-testid="infinstor-model-versions" aria-busy={busy}>
      {registered?.description && <p className="jp-InfinStor-description">{registered.description}</p>}
      {Object.keys(tags).length > 0 && (
        <p className="jp-InfinStor-chips" aria-label={trans.__('Model tags')}>
          {Object.entries(tags).map(([k, v]) => (
            <span key={k} className="jp-InfinStor-chip">
              {k}={v}
            </span>
          ))}
        </p>
      )}
      {model.error && (
        <ErrorState error={model.error} what={trans.__('Could not list the versions.')} compact onRetry={() => void model.refresh()} />
      )}
      {!model.loaded && <LoadingState label={trans.__('Loading versions…')} />}
      {model.loaded && !model.error && model.versions.length === 0 && <EmptyState title={trans.__('No versions yet.')} />}
      {model.versions.length > 0 && (
        <ul className="jp-InfinStor-versionList" aria-label={trans.__('Versions of %1', model.name)}>
          {model.versions.map(v => {
            const vtags = tagMap(v.tags);
            const aliases = model.aliases(v);
            const runName = v.run_id ? model.runName(v.run_id) : null;
            return (
              <li key={v.version} className="jp-InfinStor-version" data-testid="infinstor-model-version" data-version={v.version}>
                <div className="jp-InfinStor-versionHead">
                  <button
                    className="jp-InfinStor-linkButton jp-InfinStor-versionName"
                    title={trans.__('Open version %1 in MLflow UI', v.version)}
                    onClick={() =>
                      props.actions.openUi(`#/models/${encodeURIComponent(v.name)}/versions/${v.version}`, `${v.name} v${v.version}`)
                    }
                  >
                    v{v.version}
                  </button>
                  <span className="jp-InfinStor-aliases" data-testid="infinstor-version-aliases">
                    {aliases.map(a => (
                      <span key={a} className="jp-InfinStor-chip jp-InfinStor-alias" data-alias={a}>
                        @{a}
                        <button
                          className="jp-InfinStor-chipRemove"
                          title={trans.__('Remove the alias @%1', a)}
                          aria-label={trans.__('Remove the alias @%1 from v%2', a, v.version)}
                          disabled={busy}
                          onClick={() => void removeAlias(v, a)}
                        >
                          <closeIcon.react tag="span" className="jp-InfinStor-chipRemoveIcon" />
                        </button>
                      </span>
                    ))}
                  </span>
                  <span className="jp-InfinStor-spacer" />
                  <Button
                    small
                    minimal
                    className="jp-InfinStor-promote"
                    title={trans.__('Set an alias on v%1 (e.g. move @champion here)', v.version)}
                    aria-label={trans.__('Set an alias on v%1', v.version)}
                    data-testid="infinstor-version-promote"
                    disabled={busy}
                    onClick={() => void promote(v)}
                  >
                    {trans.__('Set alias…')}
                  </Button>
                </div>
                <div className="jp-InfinStor-listMeta">
                  <span
                    className={`jp-InfinStor-versionStatus jp-mod-${(v.status ?? 'unknown').toLowerCase()}`}
                    title={v.status_message || undefined}
                    data-testid="infinstor-version-status"
                  >
                    {versionStatusLabel(v.status, trans)}
                  </span>
                  {v.current_stage && v.current_stage !== 'None' ? ` · ${v.current_stage}` : ''}
                  {' · '}
                  <span title={formatTimestamp(v.creation_timestamp)}>{trans.__('created %1', formatRelative(v.creation_timestamp, undefined, trans))}</span>
                  {v.user_id ? ` · ${v.user_id}` : ''}
                </div>
                {v.run_id && (
                  <div className="jp-InfinStor-listMeta">
                    {trans.__('from run')}{' '}
                    <button
                      className="jp-InfinStor-linkButton"
                      title={trans.__('Open the run that produced version %1', v.version)}
                      data-testid="infinstor-version-run"
                      onClick={() => props.actions.openRun(v.run_id!)}
                    >
                      {runName ?? v.run_id.slice(0, 8)}
                    </button>
                  </div>
                )}
                {v.description && <div className="jp-InfinStor-versionDescription">{v.description}</div>}
                {Object.keys(vtags).length > 0 && (
                  <div className="jp-InfinStor-chips" aria-label={trans.__('Tags of v%1', v.version)}>
                    {Object.entries(vtags).map(([k, val]) => (
                      <span key={k} className="jp-InfinStor-chip" title={trans.__('tag')}>
                        {k}={val}
                      </span>
                    ))}
                  </div>
                )}
                {refusal && refusal.version === v.version && (
                  <div data-testid="infinstor-version-refusal">
                    <ErrorState error={refusal.error} what={refusal.what} compact />
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

/**
 * The body of the "Set alias" dialog: the alias (existing ones offered), and what it does.
 */
class PromoteBody extends ReactWidget implements Dialog.IBodyWidget<string> {
  constructor(
    private model: ModelVersionsModel,
    private version: IModelVersion,
    private known: string[],
    private trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-InfinStor-promoteDialog');
  }

  getValue(): string {
    return this._value.trim();
  }

  protected render(): JSX.Element {
    return (
      <PromoteForm
        known={this.known}
        trans={this.trans}
        target={alias => this.model.aliasTarget(alias)}
        version={this.version.version}
        onChange={value => (this._value = value)}
      />
    );
  }

  private _value = '';
}

function PromoteForm(props: {
  known: string[];
  trans: TranslationBundle;
  version: string;
  target: (alias: string) => string | null;
  onChange: (value: string) => void;
}): JSX.Element {
  const { trans } = props;
  const [value, setValue] = React.useState('');
  const alias = value.trim();
  const target = alias ? props.target(alias) : null;
  let hint = trans.__('Code can then load this version as models:/<name>@<alias>.');
  if (alias && target === props.version) {
    hint = trans.__('@%1 already points at v%2.', alias, props.version);
  } else if (alias && target) {
    hint = trans.__('@%1 moves from v%2 to v%3.', alias, target, props.version);
  } else if (alias) {
    hint = trans.__('A new alias @%1 will point at v%2.', alias, props.version);
  }
  return (
    <div className="jp-InfinStor-promote">
      <label className="jp-InfinStor-promoteLabel">
        {trans.__('Alias')}
        <input
          className="jp-mod-styled jp-InfinStor-input"
          list="infinstor-known-aliases"
          value={value}
          autoFocus
          placeholder={trans.__('e.g. champion')}
          data-testid="infinstor-promote-alias"
          onChange={e => {
            setValue(e.target.value);
            props.onChange(e.target.value);
          }}
        />
      </label>
      <datalist id="infinstor-known-aliases">
        {props.known.map(a => (
          <option key={a} value={a} />
        ))}
      </datalist>
      <p className="jp-InfinStor-stateHint" data-testid="infinstor-promote-hint" aria-live="polite">
        {hint}
      </p>
    </div>
  );
}

async function promoteDialog(
  model: ModelVersionsModel,
  version: IModelVersion,
  known: string[],
  trans: TranslationBundle
): Promise<string | null> {
  const result = await showDialog({
    title: trans.__('Set an alias on %1 v%2', model.name, version.version),
    body: new PromoteBody(model, version, known, trans),
    buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.okButton({ label: trans.__('Set alias') })],
    focusNodeSelector: 'input'
  });
  const alias = result.button.accept ? (result.value ?? '').trim().replace(/^@/, '') : '';
  return alias || null;
}
