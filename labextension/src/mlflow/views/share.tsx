import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Button, deleteIcon, HTMLSelect, shareIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, formatRelative, formatTimestamp } from '../format';
import {
  IPermission,
  IShareTarget,
  PRINCIPAL_TYPES,
  principalTypeLabel,
  PrincipalType,
  Role,
  ROLES,
  ShareModel,
  SharingSupport
} from '../sharing';
import { ErrorState, LoadingState, TranslationContext, useSignal, useTrans } from './common';

/**
 * "Share…": who has access to an experiment or a registered model, and (for
 * managers: the service decides) grant, change and revoke.
 */
export async function showShareDialog(
  support: SharingSupport,
  target: IShareTarget,
  trans: TranslationBundle = nullTranslator.load('infinstor_jupyterlab')
): Promise<void> {
  const model = new ShareModel({ sharing: support.sharing, target, whoami: support.whoami });
  const body = ReactWidget.create(
    <TranslationContext.Provider value={trans}>
      <SharePanel model={model} />
    </TranslationContext.Provider>
  );
  body.addClass('jp-InfinStor-shareBody');
  void model.refresh();
  try {
    await showDialog({
      title:
        target.type === 'experiment'
          ? trans.__('Share experiment "%1"', target.name)
          : trans.__('Share model "%1"', target.name),
      body,
      buttons: [Dialog.okButton({ label: trans.__('Close'), ariaLabel: trans.__('Close the Share dialog') })],
      // No default button: Enter in the grant form submits the form instead of closing the dialog.
      defaultButton: -1,
      focusNodeSelector: 'input',
      hasClose: true
    });
  } finally {
    model.dispose();
  }
}

/**
 * The "Share…" button of an experiment or model; rendered only when the service shares.
 */
export function ShareButton(props: { support: SharingSupport | null; target: IShareTarget; testid: string }): JSX.Element | null {
  const trans = useTrans();
  useSignal(props.support?.changed);
  if (!props.support?.supported) {
    return null;
  }
  const label = trans.__('Share %1…', props.target.name);
  return (
    <Button
      minimal
      small
      className="jp-InfinStor-iconButton"
      title={label}
      aria-label={label}
      aria-haspopup="dialog"
      data-testid={props.testid}
      onClick={() => void showShareDialog(props.support!, props.target, trans)}
    >
      <shareIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
    </Button>
  );
}

/**
 * The dialog's body: the list of grants and the grant form.
 */
export function SharePanel(props: { model: ShareModel }): JSX.Element {
  const { model } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const experiment = model.target.type === 'experiment';
  return (
    <div className="jp-InfinStor-share" data-testid="infinstor-share" aria-busy={model.busy || model.loading}>
      <h3 className="jp-InfinStor-shareHeading" id="infinstor-share-access">
        {trans.__('Who has access')}
      </h3>
      {model.error && (
        <ErrorState
          error={model.error}
          what={experiment ? trans.__('Could not list who has access to this experiment.') : trans.__('Could not list who has access to this model.')}
          compact
          onRetry={() => void model.refresh()}
        />
      )}
      {!model.loaded && !model.error && <LoadingState label={trans.__('Loading who has access…')} />}
      {model.loaded && !model.error && model.permissions.length === 0 && (
        <p className="jp-InfinStor-hint" data-testid="infinstor-share-empty">
          {experiment
            ? trans.__('Nobody holds a role on this experiment (organisation admins still manage it).')
            : trans.__('Nobody holds a role on this model (organisation admins still manage it).')}
        </p>
      )}
      {model.permissions.length > 0 && (
        <table className="jp-InfinStor-table jp-InfinStor-shareTable" aria-labelledby="infinstor-share-access" data-testid="infinstor-share-list">
          <thead>
            <tr>
              <th scope="col">{trans.__('Type')}</th>
              <th scope="col">{trans.__('Name')}</th>
              <th scope="col">{trans.__('Role')}</th>
              <th scope="col">{trans.__('Granted by')}</th>
              <th scope="col">{trans.__('Granted')}</th>
              <th scope="col">
                <span className="jp-InfinStor-srOnly">{trans.__('Revoke')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {model.permissions.map(p => (
              <PermissionRow key={`${p.principal_type}:${p.principal}`} model={model} permission={p} />
            ))}
          </tbody>
        </table>
      )}
      <GrantForm model={model} />
      <ActionError model={model} />
      <p className="jp-InfinStor-srOnly" role="status" aria-live="polite" data-testid="infinstor-share-notice">
        {model.notice}
      </p>
      <p className="jp-InfinStor-hint">
        {trans.__(
          'Readers see it, editors add to it, managers also rename, delete and share it. Only managers can change who has access.'
        )}
      </p>
    </div>
  );
}

function principalName(p: IPermission, trans: TranslationBundle): string {
  switch (p.principal_type) {
    case 'org':
      return trans.__('the organisation %1', p.principal);
    case 'group':
      return trans.__('group %1', p.principal);
    default:
      return trans.__('user %1', p.principal);
  }
}

function PermissionRow(props: { model: ShareModel; permission: IPermission }): JSX.Element {
  const { model, permission: p } = props;
  const trans = useTrans();
  const who = principalName(p, trans);
  return (
    <tr data-testid="infinstor-share-row" data-principal-type={p.principal_type} data-principal={p.principal} data-role={p.role}>
      <td>{principalTypeLabel(p.principal_type, trans)}</td>
      <td className="jp-InfinStor-shareName" title={p.principal}>
        {p.principal}
      </td>
      <td>
        <HTMLSelect
          className="jp-InfinStor-shareSelect"
          aria-label={trans.__('Role of %1', who)}
          data-testid="infinstor-share-role"
          value={p.role}
          disabled={model.busy}
          options={[...ROLES]}
          onChange={e => void model.changeRole(p, e.target.value as Role)}
        />
      </td>
      <td>{p.granted_by || '—'}</td>
      <td title={p.granted_at ? formatTimestamp(p.granted_at) : undefined}>{p.granted_at ? formatRelative(p.granted_at, undefined, trans) : '—'}</td>
      <td>
        <Button
          minimal
          small
          className="jp-InfinStor-iconButton"
          title={trans.__('Revoke the access of %1', who)}
          aria-label={trans.__('Revoke the access of %1', who)}
          data-testid="infinstor-share-revoke"
          disabled={model.busy}
          onClick={() => void model.revoke(p)}
        >
          <deleteIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
      </td>
    </tr>
  );
}

function GrantForm(props: { model: ShareModel }): JSX.Element {
  const { model } = props;
  const trans = useTrans();
  const [type, setType] = React.useState<PrincipalType>('user');
  const [name, setName] = React.useState('');
  const [role, setRole] = React.useState<Role>('reader');
  const org = model.whoami?.org ?? '';
  const shownName = type === 'org' ? org : name;
  const nameLabel = type === 'user' ? trans.__('User name') : type === 'group' ? trans.__('Group name') : trans.__('Organisation');
  return (
    <form
      className="jp-InfinStor-shareForm"
      aria-label={trans.__('Grant access')}
      data-testid="infinstor-share-form"
      onSubmit={e => {
        e.preventDefault();
        e.stopPropagation();
        void model.grant(type, shownName, role).then(ok => {
          if (ok && type !== 'org') {
            setName('');
          }
        });
      }}
    >
      <label className="jp-InfinStor-shareField">
        <span>{trans.__('Give')}</span>
        <HTMLSelect
          className="jp-InfinStor-shareSelect"
          aria-label={trans.__('Grant to')}
          data-testid="infinstor-share-principal-type"
          value={type}
          options={PRINCIPAL_TYPES.map(t => ({
            value: t,
            label: t === 'org' ? trans.__('the whole organisation') : t === 'group' ? trans.__('a group') : trans.__('a user')
          }))}
          onChange={e => {
            setType(e.target.value as PrincipalType);
            model.clearActionError();
          }}
        />
      </label>
      <label className="jp-InfinStor-shareField jp-InfinStor-shareNameField">
        <span className="jp-InfinStor-srOnly">{nameLabel}</span>
        <input
          className="jp-mod-styled jp-InfinStor-input"
          aria-label={nameLabel}
          data-testid="infinstor-share-principal"
          placeholder={type === 'user' ? trans.__('user name, e.g. bob') : type === 'group' ? trans.__('group name, e.g. nlp') : ''}
          value={shownName}
          readOnly={type === 'org'}
          maxLength={255}
          onChange={e => {
            setName(e.target.value);
            model.clearActionError();
          }}
        />
      </label>
      <label className="jp-InfinStor-shareField">
        <span>{trans.__('as')}</span>
        <HTMLSelect
          className="jp-InfinStor-shareSelect"
          aria-label={trans.__('Role to grant')}
          data-testid="infinstor-share-grant-role"
          value={role}
          options={[...ROLES]}
          onChange={e => setRole(e.target.value as Role)}
        />
      </label>
      <Button type="submit" small className="jp-mod-styled jp-mod-accept" disabled={model.busy} data-testid="infinstor-share-grant">
        {trans.__('Grant')}
      </Button>
    </form>
  );
}

function ActionError(props: { model: ShareModel }): JSX.Element | null {
  const trans = useTrans();
  const error = props.model.actionError;
  if (!error) {
    return null;
  }
  const d = describeError(error, trans);
  return (
    <div className="jp-InfinStor-state jp-InfinStor-state-error jp-mod-compact" role="alert" data-testid="infinstor-share-error" data-error-kind={d.kind}>
      <p className="jp-InfinStor-stateMessage">{d.message}</p>
      {d.kind === 'forbidden' && (
        <p className="jp-InfinStor-stateHint">
          {props.model.target.type === 'experiment'
            ? trans.__('Only managers of this experiment (and organisation admins) can change who has access.')
            : trans.__('Only managers of this model (and organisation admins) can change who has access.')}
        </p>
      )}
    </div>
  );
}
