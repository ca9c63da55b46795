/**
 * "Register model…" on a run page: pick one of the run's models (its MLflow 3 logged models, or
 * an MLmodel folder among its artifacts) and a registered model name (new or existing).
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { IMlflowClient } from '../tokens';
import { runName } from '../mlflow/format';
import { ILoggedModel, IRun } from '../mlflow/types';
import { showRefusal } from '../mlflow/views/experiments';

export interface IModelSource {
  label: string;
  source: string;
  modelId?: string;
}

interface IRegisterValue {
  source: IModelSource | null;
  name: string;
}

class RegisterBody extends ReactWidget implements Dialog.IBodyWidget<IRegisterValue> {
  constructor(
    private _sources: IModelSource[],
    private _names: string[],
    name: string,
    private _trans: TranslationBundle
  ) {
    super();
    this._value = { source: _sources[0] ?? null, name };
  }
  getValue(): IRegisterValue {
    return this._value;
  }
  protected render(): JSX.Element {
    const trans = this._trans;
    return (
      <div className="jp-InfinStor-registerForm" data-testid="infinstor-register-form">
        <label className="jp-InfinStor-dialogField">
          {trans.__('Logged model')}
          <select
            className="jp-mod-styled"
            defaultValue="0"
            onChange={e => (this._value = { ...this._value, source: this._sources[Number(e.target.value)] ?? null })}
          >
            {this._sources.map((s, i) => (
              <option key={i} value={i}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <label className="jp-InfinStor-dialogField">
          {trans.__('Registered model name (new or existing)')}
          <input
            className="jp-mod-styled"
            list="infinstor-registered-names"
            defaultValue={this._value.name}
            data-testid="infinstor-register-name"
            onChange={e => (this._value = { ...this._value, name: e.target.value })}
          />
          <datalist id="infinstor-registered-names">
            {this._names.map(n => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </label>
      </div>
    );
  }
  private _value: IRegisterValue;
}

/**
 * The models a run can register from: its logged models and the MLmodel folders among its
 * top-level artifacts.
 */
export async function findModelSources(
  client: IMlflowClient,
  run: IRun,
  trans: TranslationBundle,
  logged?: ILoggedModel[]
): Promise<IModelSource[]> {
  const sources: IModelSource[] = [];
  const models = logged ?? (await client.searchLoggedModels(run.info.experiment_id, run.info.run_id).catch(() => []));
  for (const m of models) {
    sources.push({
      label: `${m.info.name ?? trans.__('model')} (${m.info.model_id})`,
      source: `models:/${m.info.model_id}`,
      modelId: m.info.model_id
    });
  }
  const top = await client.listArtifacts(run.info.run_id).catch(() => []);
  for (const dir of top.filter(f => f.is_dir)) {
    const files = await client.listArtifacts(run.info.run_id, dir.path).catch(() => []);
    if (files.some(f => f.path.endsWith('/MLmodel') || f.path === 'MLmodel')) {
      sources.push({ label: `artifacts/${dir.path}`, source: `${run.info.artifact_uri}/${dir.path}` });
    }
  }
  return sources;
}

/** Ask what to register, then register it; resolves true when a version was made. */
export async function registerModelDialog(
  client: IMlflowClient,
  run: IRun,
  trans: TranslationBundle,
  logged?: ILoggedModel[]
): Promise<boolean> {
  const sources = await findModelSources(client, run, trans, logged);
  if (!sources.length) {
    await showDialog({
      title: trans.__('Register model'),
      body: trans.__('This run has no logged model. Log one with mlflow.<flavor>.log_model(), then register it here.'),
      buttons: [Dialog.okButton({ label: trans.__('Close') })]
    });
    return false;
  }
  const names = await client
    .searchRegisteredModels({ maxResults: 500 })
    .then(p => p.items.map(m => m.name))
    .catch(() => [] as string[]);
  const result = await showDialog<IRegisterValue>({
    title: trans.__('Register a model from %1', runName(run)),
    body: new RegisterBody(sources, names, runName(run), trans),
    buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.okButton({ label: trans.__('Register') })]
  });
  const value = result.value;
  if (!result.button.accept || !value || !value.source || !value.name.trim()) {
    return false;
  }
  try {
    await client.createRegisteredModel(value.name.trim());
    const version = await client.createModelVersion({
      name: value.name.trim(),
      source: value.source.source,
      runId: run.info.run_id,
      modelId: value.source.modelId
    });
    Notification.success(trans.__('Registered %1 version %2.', version.name, version.version), { autoClose: 5000 });
    return true;
  } catch (error) {
    await showRefusal(trans.__('Could not register the model'), error, trans);
    return false;
  }
}
