import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import { Button, deleteIcon, HTMLSelect, shareIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, formatRelative, formatTimestamp } from '../format';
import {
  IPermission,
  IShareTarget,
  PRINCIPAL_TYPES,
  principalTypeLabel,
  PrincipalType,
  resourceLabel,
  Role,
  ROLES,
  ShareModel,
  SharingSupport
} from '../sharing';
import { ErrorState, LoadingState, useSignal } from './common';

/**
 * "Share…": who has access to an experiment or a registered model, and (for
 * managers: the service decides) grant, change and revoke.
 */
export async function showShareDialog(support: SharingSupport, target: IShareTarget): Promise<void> {
  const model = new ShareModel({ sharing: support.sharing, target, whoami: support.whoami });
  const body = ReactWidget.create(<SharePanel model={model} />);
  body.addClass('jp-InfinStor-shareBody');
  void model.refresh();
  try {
    await showDialog({
      title: `Share ${resourceLabel(target.type)} "${target.name}"`,
      body,
      buttons: [Dialog.okButton({ label: 'Close', ariaLabel: 'Close the Share dialog' })],
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
  useSignal(props.support?.changed);
  if (!props.support?.supported) {
    return null;
  }
  const label = `Share ${props.target.name}…`;
  return (
    <Button
      minimal
      small
      className="jp-InfinStor-iconButton"
      title={label}
      aria-label={label}
      aria-haspopup="dialog"
      data-testid={props.testid}
      onClick={() => void showShareDialog(props.support!, props.target)}
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
  useSignal(model.changed);
  const what = resourceLabel(model.target.type);
  return (
    <div className="jp-InfinStor-share" data-testid="infinstor-share" aria-busy={model.busy || model.loading}>
      <h3 className="jp-InfinStor-shareHeading" id="infinstor-share-access">
        Who has access
      </h3>
      {model.error && <ErrorState error={model.error} what={`Could not list who has access to this ${what}.`} compact onRetry={() => void model.refresh()} />}
      {!model.loaded && !model.error && <LoadingState label="Loading who has access…" />}
      {model.loaded && !model.error && model.permissions.length === 0 && (
        <p className="jp-InfinStor-hint" data-testid="infinstor-share-empty">
          Nobody holds a role on this {what} (organisation admins still manage it).
        </p>
      )}
      {model.permissions.length > 0 && (
        <table className="jp-InfinStor-table jp-InfinStor-shareTable" aria-labelledby="infinstor-share-access" data-testid="infinstor-share-list">
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Granted by</th>
              <th scope="col">Granted</th>
              <th scope="col">
                <span className="jp-InfinStor-srOnly">Revoke</span>
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
        Readers see it, editors add to it, managers also rename, delete and share it. Only managers can change who has access.
      </p>
    </div>
  );
}

function principalName(p: IPermission): string {
  return p.principal_type === 'org' ? `the organisation ${p.principal}` : `${p.principal_type} ${p.principal}`;
}

function PermissionRow(props: { model: ShareModel; permission: IPermission }): JSX.Element {
  const { model, permission: p } = props;
  const who = principalName(p);
  return (
    <tr data-testid="infinstor-share-row" data-principal-type={p.principal_type} data-principal={p.principal} data-role={p.role}>
      <td>{principalTypeLabel(p.principal_type)}</td>
      <td className="jp-InfinStor-shareName" title={p.principal}>
        {p.principal}
      </td>
      <td>
        <HTMLSelect
          className="jp-InfinStor-shareSelect"
          aria-label={`Role of ${who}`}
          data-testid="infinstor-share-role"
          value={p.role}
          disabled={model.busy}
          options={[...ROLES]}
          onChange={e => void model.changeRole(p, e.target.value as Role)}
        />
      </td>
      <td>{p.granted_by || '—'}</td>
      <td title={p.granted_at ? formatTimestamp(p.granted_at) : undefined}>{p.granted_at ? formatRelative(p.granted_at) : '—'}</td>
      <td>
        <Button
          minimal
          small
          className="jp-InfinStor-iconButton"
          title={`Revoke the access of ${who}`}
          aria-label={`Revoke the access of ${who}`}
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
  const [type, setType] = React.useState<PrincipalType>('user');
  const [name, setName] = React.useState('');
  const [role, setRole] = React.useState<Role>('reader');
  const org = model.whoami?.org ?? '';
  const shownName = type === 'org' ? org : name;
  const nameLabel = type === 'user' ? 'User name' : type === 'group' ? 'Group name' : 'Organisation';
  return (
    <form
      className="jp-InfinStor-shareForm"
      aria-label="Grant access"
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
        <span>Give</span>
        <HTMLSelect
          className="jp-InfinStor-shareSelect"
          aria-label="Grant to"
          data-testid="infinstor-share-principal-type"
          value={type}
          options={PRINCIPAL_TYPES.map(t => ({ value: t, label: t === 'org' ? 'the whole organisation' : `a ${t}` }))}
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
          placeholder={type === 'user' ? 'user name, e.g. bob' : type === 'group' ? 'group name, e.g. nlp' : ''}
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
        <span>as</span>
        <HTMLSelect
          className="jp-InfinStor-shareSelect"
          aria-label="Role to grant"
          data-testid="infinstor-share-grant-role"
          value={role}
          options={[...ROLES]}
          onChange={e => setRole(e.target.value as Role)}
        />
      </label>
      <Button type="submit" small className="jp-mod-styled jp-mod-accept" disabled={model.busy} data-testid="infinstor-share-grant">
        Grant
      </Button>
    </form>
  );
}

function ActionError(props: { model: ShareModel }): JSX.Element | null {
  const error = props.model.actionError;
  if (!error) {
    return null;
  }
  const d = describeError(error);
  return (
    <div className="jp-InfinStor-state jp-InfinStor-state-error jp-mod-compact" role="alert" data-testid="infinstor-share-error" data-error-kind={d.kind}>
      <p className="jp-InfinStor-stateMessage">{d.message}</p>
      {d.kind === 'forbidden' && <p className="jp-InfinStor-stateHint">Only managers of this {resourceLabel(props.model.target.type)} (and organisation admins) can change who has access.</p>}
    </div>
  );
}
