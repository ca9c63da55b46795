/**
 * @jest-environment node
 */
import { InfinStorRequestError } from '../../common/request';
import {
  comparePermissions,
  grantedAt,
  IPermission,
  ShareModel,
  SharingClient,
  sharingKey,
  SharingSupport,
  validateGrant
} from '../sharing';
import { Answer, fakeProxy, Routes } from './fakeProxy';


/** The lab's proxy in front of a tracking service, with the sharing client on top. */
function fakeServer(routes: Routes) {
  const { client, calls } = fakeProxy(routes);
  return { client, sharing: new SharingClient(client), calls };
}

const WHOAMI = { username: 'alice', org: 'acme', groups: ['vision'], email: 'alice@acme.example', admin: false, auth: 'oidc' };
const EXPERIMENT = { type: 'experiment' as const, id: '12', name: 'churn' };

/** A service that keeps grants like the company service does (per resource, one role per principal). */
function sharingService(options: { managers?: string[]; caller?: string } = {}) {
  const grants: IPermission[] = [
    { principal_type: 'user', principal: 'alice', role: 'manager', granted_by: 'alice', granted_at: 1793527200000 }
  ];
  const managers = options.managers ?? ['alice'];
  const caller = options.caller ?? 'alice';
  const refuse = (status: number, error_code: string, message: string): Answer => ({ status, body: { error_code, message } });
  const server = fakeServer({
    'api/2.0/infinstor/whoami': () => ({ body: { ...WHOAMI, username: caller } }),
    'api/2.0/infinstor/permissions': call => {
      if (call.method === 'GET') {
        return { body: { permissions: grants } };
      }
      const b = call.body;
      if (!managers.includes(caller)) {
        return refuse(403, 'PERMISSION_DENIED', `This needs the manager role on experiment ${b.resource_id}; you hold editor.`);
      }
      if (b.principal_type === 'org' && b.principal !== 'acme') {
        return refuse(400, 'INVALID_PARAMETER_VALUE', 'Only your own organisation can be given a role.');
      }
      const index = grants.findIndex(g => g.principal_type === b.principal_type && g.principal === b.principal);
      if (call.method === 'POST') {
        const grant = { principal_type: b.principal_type, principal: b.principal, role: b.role, granted_by: caller, granted_at: 1795985619348 };
        if (index >= 0) {
          grants[index] = grant;
        } else {
          grants.push(grant);
        }
        return { body: { granted: { principal_type: b.principal_type, principal: b.principal, role: b.role } } };
      }
      if (index < 0) {
        return refuse(404, 'RESOURCE_DOES_NOT_EXIST', `${b.principal_type} ${b.principal} holds no role on this experiment`);
      }
      grants.splice(index, 1);
      return { body: { revoked: { principal_type: b.principal_type, principal: b.principal } } };
    }
  });
  return { ...server, grants };
}

describe('SharingClient', () => {
  it('lists, grants and revokes through the proxy with the service API', async () => {
    const { sharing, calls } = sharingService();
    const listed = await sharing.list(EXPERIMENT);
    expect(listed).toEqual([
      { principal_type: 'user', principal: 'alice', role: 'manager', granted_by: 'alice', granted_at: 1793527200000 }
    ]);
    expect(calls[0].method).toBe('GET');
    expect(calls[0].path).toBe('api/2.0/infinstor/permissions');
    expect(calls[0].query.get('resource_type')).toBe('experiment');
    expect(calls[0].query.get('resource_id')).toBe('12');

    await sharing.grant({ type: 'registered_model', id: 'churn model', name: 'churn model' }, 'group', 'vision', 'reader');
    expect(calls[1]).toMatchObject({
      method: 'POST',
      path: 'api/2.0/infinstor/permissions',
      body: { resource_type: 'registered_model', resource_id: 'churn model', principal_type: 'group', principal: 'vision', role: 'reader' }
    });

    await sharing.revoke(EXPERIMENT, 'group', 'vision');
    expect(calls[2]).toMatchObject({
      method: 'DELETE',
      path: 'api/2.0/infinstor/permissions',
      body: { resource_type: 'experiment', resource_id: '12', principal_type: 'group', principal: 'vision' }
    });
  });

  it('throws the service refusal with its own message and code', async () => {
    const { sharing } = sharingService({ caller: 'bob' });
    const error = await sharing.grant(EXPERIMENT, 'user', 'carol', 'editor').catch(e => e);
    expect(error).toBeInstanceOf(InfinStorRequestError);
    expect(error.status).toBe(403);
    expect(error.reason).toBe('PERMISSION_DENIED');
    expect(error.message).toBe('This needs the manager role on experiment 12; you hold editor.');
  });

  it('sorts the list: organisation, groups, users, then by name', () => {
    const p = (principal_type: any, principal: string): IPermission => ({ principal_type, principal, role: 'reader', granted_by: '', granted_at: null });
    const sorted = [p('user', 'bob'), p('group', 'nlp'), p('user', 'alice'), p('org', 'acme'), p('group', 'aa')].sort(comparePermissions);
    expect(sorted.map(x => `${x.principal_type}:${x.principal}`)).toEqual(['org:acme', 'group:aa', 'group:nlp', 'user:alice', 'user:bob']);
  });

  it('normalises whoami', async () => {
    const { sharing } = fakeServer({ 'api/2.0/infinstor/whoami': () => ({ body: { username: 'alice', org: 'acme' } }) });
    expect(await sharing.whoami()).toEqual({ username: 'alice', org: 'acme', groups: [], email: '', admin: false, auth: '' });
  });
});

describe('grantedAt', () => {
  it('reads the service\'s milliseconds, numeric strings and ISO times; null otherwise', () => {
    expect(grantedAt(1795985619348)).toBe(1795985619348);
    expect(grantedAt('1795985619348')).toBe(1795985619348);
    expect(grantedAt('2026-11-01T10:00:00Z')).toBe(Date.UTC(2026, 10, 1, 10));
    for (const bad of [null, undefined, '', 'yesterday', 0, NaN, {}]) {
      expect(grantedAt(bad)).toBeNull();
    }
  });
});

describe('validateGrant', () => {
  it.each([
    ['user', 'bob', 'reader', null],
    ['group', 'vision', 'manager', null],
    ['org', 'acme', 'editor', null],
    ['user', '', 'reader', 'Enter the user name.'],
    ['group', '   ', 'reader', 'Enter the group name.'],
    ['org', '', 'reader', 'Your organisation is not known yet; close the dialog and try again.'],
    ['user', 'bob', 'owner', 'Choose a role: reader, editor or manager.'],
    ['team', 'bob', 'reader', 'Choose a user, a group or the organisation.'],
    ['user', 'x'.repeat(256), 'reader', 'Names are at most 255 characters.'],
    ['user', 'bo\nb', 'reader', 'Names cannot contain control characters.']
  ])('%s %j as %s -> %j', (type, name, role, problem) => {
    expect(validateGrant(type, name, role)).toBe(problem);
  });
});

describe('sharingKey', () => {
  const status = (state: string, signed_in: boolean, name: string) => ({
    tracking: { mode: 'remote', state, uri: 'https://mlflow.example.com' },
    user: { signed_in, name, org: 'acme' }
  });
  it('is null until the service runs, and changes with the user', () => {
    expect(sharingKey(null)).toBeNull();
    expect(sharingKey(status('starting', true, 'alice'))).toBeNull();
    const alice = sharingKey(status('running', true, 'alice'));
    expect(alice).not.toBeNull();
    expect(sharingKey(status('running', true, 'alice'))).toBe(alice);
    expect(sharingKey(status('running', true, 'bob'))).not.toBe(alice);
    expect(sharingKey(status('running', false, 'alice'))).not.toBe(alice);
  });
});

describe('SharingSupport', () => {
  it('is supported when whoami answers 200, and asks once per key', async () => {
    const { sharing, calls } = sharingService();
    const support = new SharingSupport(sharing);
    const seen: string[] = [];
    support.changed.connect(() => seen.push(support.state));
    expect(support.supported).toBe(false);
    await support.update('k1');
    expect(support.supported).toBe(true);
    expect(support.whoami?.org).toBe('acme');
    await support.update('k1');
    await support.update('k1');
    expect(calls.filter(c => c.path === 'api/2.0/infinstor/whoami')).toHaveLength(1);
    await support.update('k2');
    expect(calls.filter(c => c.path === 'api/2.0/infinstor/whoami')).toHaveLength(2);
    expect(seen).toEqual(['checking', 'supported', 'checking', 'supported']);
  });

  it('is hidden when whoami is not there (404), refused (401) or fails; null hides without asking', async () => {
    for (const answer of [
      { status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND', message: 'not found' } },
      { status: 401, body: { reason: 'sign_in_required', message: 'Sign in' } },
      { status: 502, body: { reason: 'tracking_unavailable', message: 'down' } }
    ]) {
      const { sharing } = fakeServer({ 'api/2.0/infinstor/whoami': () => answer });
      const support = new SharingSupport(sharing);
      await support.update('k');
      expect([answer.status, support.state]).toEqual([answer.status, 'unsupported']);
      expect(support.whoami).toBeNull();
    }
    const { sharing, calls } = fakeServer({ 'api/2.0/infinstor/whoami': () => ({ body: WHOAMI }) });
    const support = new SharingSupport(sharing);
    await support.update('k');
    expect(support.supported).toBe(true);
    await support.update(null);
    expect(support.state).toBe('unknown');
    expect(support.supported).toBe(false);
    expect(calls).toHaveLength(1);
  });

  it('keeps the answer of the latest key only', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>(resolve => (release = resolve));
    let first = true;
    const { sharing } = fakeServer({
      'api/2.0/infinstor/whoami': async () => {
        if (first) {
          first = false;
          await slow;
          return { body: WHOAMI };
        }
        return { status: 404, body: { message: 'no' } };
      }
    });
    const support = new SharingSupport(sharing);
    const a = support.update('signed-in');
    await support.update('signed-out');
    release();
    await a;
    expect(support.state).toBe('unsupported');
  });
});

describe('ShareModel', () => {
  it('lists, grants, changes and revokes, refreshing the list after each change', async () => {
    const { sharing, calls, grants } = sharingService();
    const model = new ShareModel({ sharing, target: EXPERIMENT, whoami: WHOAMI });
    await model.refresh();
    expect(model.loaded).toBe(true);
    expect(model.permissions.map(p => p.principal)).toEqual(['alice']);

    expect(await model.grant('group', '  vision ', 'reader')).toBe(true);
    expect(calls.find(c => c.method === 'POST')!.body.principal).toBe('vision');
    expect(model.permissions.map(p => `${p.principal_type}:${p.principal}:${p.role}`)).toEqual(['group:vision:reader', 'user:alice:manager']);
    expect(model.notice).toBe('group vision is now reader.');

    expect(await model.changeRole(model.permissions[0], 'editor')).toBe(true);
    expect(grants.find(g => g.principal === 'vision')!.role).toBe('editor');
    expect(model.permissions[0].role).toBe('editor');

    expect(await model.revoke(model.permissions[0])).toBe(true);
    expect(model.permissions.map(p => p.principal)).toEqual(['alice']);
    expect(model.notice).toBe('Access of group vision revoked.');
    expect(model.actionError).toBeNull();
    model.dispose();
  });

  it('grants the organisation as the caller\'s own, whatever was typed', async () => {
    const { sharing, calls } = sharingService();
    const model = new ShareModel({ sharing, target: EXPERIMENT, whoami: WHOAMI });
    expect(await model.grant('org', 'globex', 'reader')).toBe(true);
    expect(calls.find(c => c.method === 'POST')!.body).toMatchObject({ principal_type: 'org', principal: 'acme', role: 'reader' });
  });

  it('refuses bad input before sending anything', async () => {
    const { sharing, calls } = sharingService();
    const model = new ShareModel({ sharing, target: EXPERIMENT, whoami: null });
    expect(await model.grant('user', '   ', 'reader')).toBe(false);
    expect(model.actionError?.message).toBe('Enter the user name.');
    expect(await model.grant('org', '', 'reader')).toBe(false);
    expect(model.actionError?.message).toBe('Your organisation is not known yet; close the dialog and try again.');
    expect(calls).toHaveLength(0);
    model.clearActionError();
    expect(model.actionError).toBeNull();
  });

  it('keeps the service refusal for the dialog, and the list as it was', async () => {
    const { sharing } = sharingService({ caller: 'bob' });
    const model = new ShareModel({ sharing, target: EXPERIMENT, whoami: { ...WHOAMI, username: 'bob' } });
    await model.refresh();
    expect(await model.grant('user', 'carol', 'editor')).toBe(false);
    expect(model.actionError).toBeInstanceOf(InfinStorRequestError);
    expect(model.actionError!.message).toBe('This needs the manager role on experiment 12; you hold editor.');
    expect(model.busy).toBe(false);
    expect(model.permissions.map(p => p.principal)).toEqual(['alice']);
    expect(await model.revoke(model.permissions[0])).toBe(false);
    expect(model.actionError!.message).toBe('This needs the manager role on experiment 12; you hold editor.');
  });

  it('lists again after a refusal, so a grant revoked elsewhere meanwhile disappears', async () => {
    const { sharing, calls, grants } = sharingService();
    const model = new ShareModel({ sharing, target: EXPERIMENT, whoami: WHOAMI });
    expect(await model.grant('user', 'carol', 'reader')).toBe(true);
    const carol = model.permissions.find(p => p.principal === 'carol')!;
    // Revoked elsewhere (the CLI, another lab) while the dialog still lists it.
    grants.splice(grants.indexOf(grants.find(g => g.principal === 'carol')!), 1);
    const listsBefore = calls.filter(c => c.method === 'GET').length;
    expect(await model.revoke(carol)).toBe(false);
    expect(model.actionError!.message).toBe('user carol holds no role on this experiment');
    expect(calls.filter(c => c.method === 'GET').length).toBe(listsBefore + 1);
    expect(model.permissions.map(p => p.principal)).toEqual(['alice']);
    expect(model.error).toBeNull();
    expect(model.busy).toBe(false);
  });

  it('does not list again after a network error', async () => {
    let down = false;
    const { sharing, calls } = fakeServer({
      'api/2.0/infinstor/permissions': () => {
        if (down) {
          throw new TypeError('Failed to fetch');
        }
        return { body: { permissions: [] } };
      }
    });
    const model = new ShareModel({ sharing, target: EXPERIMENT, whoami: WHOAMI });
    await model.refresh();
    down = true;
    expect(await model.grant('user', 'carol', 'reader')).toBe(false);
    expect(model.actionError).toBeInstanceOf(InfinStorRequestError);
    expect((model.actionError as InfinStorRequestError).status).toBe(0);
    expect(calls.filter(c => c.method === 'GET')).toHaveLength(1);
    expect(model.error).toBeNull();
  });

  it('shows why the list could not be read', async () => {
    const { sharing } = fakeServer({
      'api/2.0/infinstor/permissions': () => ({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'No experiment 12' } })
    });
    const model = new ShareModel({ sharing, target: EXPERIMENT });
    await model.refresh();
    expect(model.error?.message).toBe('No experiment 12');
    expect(model.loaded).toBe(true);
    expect(model.permissions).toEqual([]);
  });
});
