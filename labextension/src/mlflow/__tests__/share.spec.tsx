import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';

import { InfinStorRequestError } from '../../common/request';
import { MlflowClient } from '../client';
import { IPermission, IShareTarget, IWhoAmI, PrincipalType, Role, ShareModel, SharingClient, SharingSupport } from '../sharing';
import { formatRelative } from '../format';
import { SharePanel, ShareButton } from '../views/share';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const WHOAMI: IWhoAmI = { username: 'alice', org: 'acme', groups: ['vision'], email: '', admin: false, auth: 'oidc' };
const ALICE_GRANTED = Date.parse('2026-11-01T10:00:00Z');
const TARGET: IShareTarget = { type: 'experiment', id: '12', name: 'churn' };

/**
 * The service's sharing API kept in memory (this suite runs in jsdom, without fetch):
 * the network calls themselves are covered by sharing.spec.ts.
 */
class MemorySharing extends SharingClient {
  constructor(public caller = 'alice') {
    super({} as MlflowClient);
  }
  grants: IPermission[] = [
    { principal_type: 'user', principal: 'alice', role: 'manager', granted_by: 'alice', granted_at: ALICE_GRANTED }
  ];
  sent: string[] = [];
  listError: Error | null = null;
  whoamiStatus = 200;

  async whoami(): Promise<IWhoAmI> {
    if (this.whoamiStatus !== 200) {
      throw new InfinStorRequestError('not found', { status: this.whoamiStatus });
    }
    return { ...WHOAMI, username: this.caller };
  }
  async list(): Promise<IPermission[]> {
    if (this.listError) {
      throw this.listError;
    }
    return this.grants.map(g => ({ ...g }));
  }
  async grant(_t: IShareTarget, type: PrincipalType, principal: string, role: Role): Promise<void> {
    this.sent.push(`grant ${type}:${principal}:${role}`);
    this._checkManager();
    const g = { principal_type: type, principal, role, granted_by: this.caller, granted_at: Date.now() };
    const i = this.grants.findIndex(x => x.principal_type === type && x.principal === principal);
    i >= 0 ? (this.grants[i] = g) : this.grants.push(g);
  }
  async revoke(_t: IShareTarget, type: PrincipalType, principal: string): Promise<void> {
    this.sent.push(`revoke ${type}:${principal}`);
    this._checkManager();
    this.grants = this.grants.filter(x => !(x.principal_type === type && x.principal === principal));
  }
  private _checkManager(): void {
    if (this.caller !== 'alice') {
      throw new InfinStorRequestError(`This needs the manager role on experiment 12; you hold editor.`, { status: 403, reason: 'PERMISSION_DENIED' });
    }
  }
}

function setValue(element: HTMLInputElement | HTMLSelectElement, value: string): void {
  const proto = element instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(element, value);
  element.dispatchEvent(new Event(element instanceof HTMLSelectElement ? 'change' : 'input', { bubbles: true }));
}

async function settle(): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise(resolve => setTimeout(resolve, 0));
    }
  });
}

describe('SharePanel', () => {
  let container: HTMLDivElement;
  let root: Root;

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
  });

  afterEach(() => {
    unmountReactRoot(container, root);
  });

  const q = (testid: string) => container.querySelector(`[data-testid="${testid}"]`) as HTMLElement | null;
  const rows = () =>
    Array.from(container.querySelectorAll('[data-testid="infinstor-share-row"]')).map(r =>
      Array.from(r.querySelectorAll('td')).slice(0, 5).map(td => (td.querySelector('select') as HTMLSelectElement | null)?.value ?? td.textContent)
    );

  async function open(sharing: MemorySharing, whoami: IWhoAmI | null = WHOAMI): Promise<ShareModel> {
    const model = new ShareModel({ sharing, target: TARGET, whoami });
    act(() => root.render(<SharePanel model={model} />));
    await act(() => model.refresh());
    return model;
  }

  async function grant(type: string, name: string | null, role: string): Promise<void> {
    act(() => setValue(q('infinstor-share-principal-type') as HTMLSelectElement, type));
    if (name !== null) {
      act(() => setValue(q('infinstor-share-principal') as HTMLInputElement, name));
    }
    act(() => setValue(q('infinstor-share-grant-role') as HTMLSelectElement, role));
    act(() => (q('infinstor-share-form') as HTMLFormElement).requestSubmit());
    await settle();
  }

  it('lists who has access: type, name, role, granted by and when', async () => {
    const sharing = new MemorySharing();
    sharing.grants.push({ principal_type: 'org', principal: 'acme', role: 'reader', granted_by: 'bob', granted_at: null });
    await open(sharing);
    expect(rows()).toEqual([
      ['Organisation', 'acme', 'reader', 'bob', '—'],
      ['User', 'alice', 'manager', 'alice', formatRelative(ALICE_GRANTED)]
    ]);
    const role = container.querySelector('[data-principal="alice"] select')!;
    expect(role.getAttribute('aria-label')).toBe('Role of user alice');
    expect(container.querySelector('[data-principal="acme"] [data-testid="infinstor-share-revoke"]')!.getAttribute('aria-label')).toBe(
      'Revoke the access of the organisation acme'
    );
    expect(q('infinstor-share-error')).toBeNull();
  });

  it('grants a group, changes its role and revokes it', async () => {
    const sharing = new MemorySharing();
    await open(sharing);
    await grant('group', 'vision', 'reader');
    expect(sharing.sent).toEqual(['grant group:vision:reader']);
    expect(rows().map(r => r.slice(0, 3))).toEqual([['Group', 'vision', 'reader'], ['User', 'alice', 'manager']]);
    expect((q('infinstor-share-principal') as HTMLInputElement).value).toBe('');
    expect(q('infinstor-share-notice')!.textContent).toBe('group vision is now reader.');

    act(() => setValue(container.querySelector('[data-principal="vision"] select') as HTMLSelectElement, 'editor'));
    await settle();
    expect(sharing.sent[1]).toBe('grant group:vision:editor');
    expect(rows()[0].slice(0, 3)).toEqual(['Group', 'vision', 'editor']);

    act(() => (container.querySelector('[data-principal="vision"] [data-testid="infinstor-share-revoke"]') as HTMLButtonElement).click());
    await settle();
    expect(sharing.sent[2]).toBe('revoke group:vision');
    expect(rows().map(r => r[1])).toEqual(['alice']);
  });

  it('grants the whole organisation as the caller\'s own', async () => {
    const sharing = new MemorySharing();
    await open(sharing);
    act(() => setValue(q('infinstor-share-principal-type') as HTMLSelectElement, 'org'));
    const input = q('infinstor-share-principal') as HTMLInputElement;
    expect(input.value).toBe('acme');
    expect(input.readOnly).toBe(true);
    expect(input.getAttribute('aria-label')).toBe('Organisation');
    await grant('org', null, 'reader');
    expect(sharing.sent).toEqual(['grant org:acme:reader']);
  });

  it('shows what is missing without sending anything', async () => {
    const sharing = new MemorySharing();
    await open(sharing);
    await grant('user', '   ', 'reader');
    const error = q('infinstor-share-error')!;
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.textContent).toContain('Enter the user name.');
    expect(sharing.sent).toEqual([]);
    // Typing clears it.
    act(() => setValue(q('infinstor-share-principal') as HTMLInputElement, 'bob'));
    expect(q('infinstor-share-error')).toBeNull();
  });

  it('shows the service refusal inline, with its own message', async () => {
    const sharing = new MemorySharing('bob');
    await open(sharing, { ...WHOAMI, username: 'bob' });
    await grant('user', 'carol', 'editor');
    const error = q('infinstor-share-error')!;
    expect(error.dataset.errorKind).toBe('forbidden');
    expect(error.textContent).toContain('This needs the manager role on experiment 12; you hold editor.');
    expect(error.textContent).toContain('Only managers of this experiment');
    expect(rows().map(r => r[1])).toEqual(['alice']);
    expect((q('infinstor-share-principal') as HTMLInputElement).value).toBe('carol');
  });

  it('says why the list could not be read', async () => {
    const sharing = new MemorySharing();
    sharing.listError = new InfinStorRequestError('No experiment 12', { status: 404, reason: 'RESOURCE_DOES_NOT_EXIST' });
    await open(sharing);
    const error = q('infinstor-mlflow-error')!;
    expect(error.textContent).toContain('Could not list who has access to this experiment.');
    expect(error.textContent).toContain('No experiment 12');
    expect(q('infinstor-share-list')).toBeNull();
  });
});

describe('ShareButton', () => {
  let container: HTMLDivElement;
  let root: Root;

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
  });

  afterEach(() => {
    unmountReactRoot(container, root);
  });

  it('shows only while the service supports sharing', async () => {
    const sharing = new MemorySharing();
    const support = new SharingSupport(sharing);
    act(() => root.render(<ShareButton support={support} target={TARGET} testid="share" />));
    expect(container.querySelector('[data-testid="share"]')).toBeNull();
    await act(() => support.update('alice'));
    const button = container.querySelector('[data-testid="share"]')!;
    expect(button.getAttribute('aria-label')).toBe('Share churn…');
    expect(button.getAttribute('aria-haspopup')).toBe('dialog');
    sharing.whoamiStatus = 404;
    await act(() => support.update('other service'));
    expect(container.querySelector('[data-testid="share"]')).toBeNull();
  });

  it('renders nothing without a support object', () => {
    act(() => root.render(<ShareButton support={null} target={TARGET} testid="share" />));
    expect(container.innerHTML).toBe('');
  });
});
