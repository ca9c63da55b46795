/**
 * A run's tags: add, edit and delete the user's own (MLflow's `mlflow.*` system tags are read-only).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Button, ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { IRun } from '../mlflow/types';
import { showRefusal } from '../mlflow/views/experiments';
import { RunPageModel } from './runPageModel';
import { useTrans } from '../mlflow/views/common';

class TagValueBody extends ReactWidget implements Dialog.IBodyWidget<string> {
  constructor(private _value: string, private _trans: TranslationBundle) {
    super();
  }
  getValue(): string {
    return this._value;
  }
  protected render(): JSX.Element {
    return (
      <label className="jp-InfinStor-dialogField">
        {this._trans.__('Value')}
        <textarea className="jp-mod-styled" defaultValue={this._value} rows={3} onChange={e => (this._value = e.target.value)} autoFocus />
      </label>
    );
  }
}

export function RunTags(props: { model: RunPageModel; run: IRun }): JSX.Element {
  const { model, run } = props;
  const trans = useTrans();
  const [key, setKey] = React.useState('');
  const [value, setValue] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const tags = (run.data.tags ?? [])
    .slice()
    .sort((a, b) => Number(a.key.startsWith('mlflow.')) - Number(b.key.startsWith('mlflow.')) || a.key.localeCompare(b.key));
  const act = async (what: string, fn: () => Promise<void>) => {
    setBusy(true);
    try {
      await fn();
    } catch (error) {
      await showRefusal(what, error, trans);
    } finally {
      setBusy(false);
    }
  };
  const edit = async (k: string, current: string) => {
    const result = await showDialog<string>({
      title: trans.__('Edit tag %1', k),
      body: new TagValueBody(current, trans),
      buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.okButton({ label: trans.__('Save') })]
    });
    if (result.button.accept && result.value !== null && result.value !== current) {
      await act(trans.__('Could not set the tag'), () => model.setTag(k, result.value!));
    }
  };
  return (
    <div className="jp-InfinStor-tags" data-testid="infinstor-run-tags">
      <table className="jp-InfinStor-table jp-InfinStor-kvTable" aria-label={trans.__('Tags')}>
        <thead>
          <tr>
            <th scope="col">{trans.__('Tag')}</th>
            <th scope="col">{trans.__('Value')}</th>
            <th scope="col">
              <span className="jp-InfinStor-srOnly">{trans.__('Actions')}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tags.map(t => {
            const system = t.key.startsWith('mlflow.');
            return (
              <tr key={t.key} data-testid="infinstor-tag" data-key={t.key}>
                <th scope="row">{t.key}</th>
                <td className="jp-InfinStor-tagValue">{t.value}</td>
                <td className="jp-InfinStor-rowActions">
                  {system ? (
                    <span className="jp-InfinStor-hint" title={trans.__('MLflow system tags are set by MLflow')}>
                      {trans.__('system')}
                    </span>
                  ) : (
                    <>
                      <Button small minimal disabled={busy} aria-label={trans.__('Edit tag %1', t.key)} onClick={() => void edit(t.key, t.value)}>
                        {trans.__('Edit')}
                      </Button>
                      <Button
                        small
                        minimal
                        disabled={busy}
                        aria-label={trans.__('Delete tag %1', t.key)}
                        onClick={() => void act(trans.__('Could not delete the tag'), () => model.deleteTag(t.key))}
                      >
                        {trans.__('Delete')}
                      </Button>
                    </>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form
        className="jp-InfinStor-toolbar"
        aria-label={trans.__('Add a tag')}
        onSubmit={e => {
          e.preventDefault();
          if (!key.trim()) {
            return;
          }
          void act(trans.__('Could not set the tag'), async () => {
            await model.setTag(key.trim(), value);
            setKey('');
            setValue('');
          });
        }}
      >
        <input className="jp-InfinStor-input" aria-label={trans.__('New tag name')} placeholder={trans.__('tag')} value={key} data-testid="infinstor-tag-key" onChange={e => setKey(e.target.value)} />
        <input className="jp-InfinStor-input" aria-label={trans.__('New tag value')} placeholder={trans.__('value')} value={value} data-testid="infinstor-tag-value" onChange={e => setValue(e.target.value)} />
        <Button type="submit" small className="jp-mod-styled" disabled={busy || !key.trim()} data-testid="infinstor-tag-add">
          {trans.__('Add tag')}
        </Button>
      </form>
    </div>
  );
}
