import {
  isTransient,
  NOTIFICATION_MAX_LENGTH,
  SERVER_EXTENSION_MISSING_MESSAGE,
  SERVER_EXTENSION_MISSING_NOTIFICATION,
  versionMismatchNotification,
  IStatus,
  modeLabel,
  normalizeVersion,
  parseStatus,
  shouldShowMessage,
  stateKind,
  stateLabel,
  userLabel,
  versionMismatch,
  versionMismatchMessage
} from '../status';
import { FRONTEND_VERSION } from '../../common/version';

const payload = {
  version: '0.1.0',
  tracking: {
    mode: 'embedded',
    state: 'running',
    message: '',
    uri: 'http://127.0.0.1:5123',
    mlflow_version: '3.17.2'
  },
  user: {
    signed_in: false,
    name: 'local',
    display_name: 'local',
    email: '',
    groups: [],
    org: ''
  },
  auth: { configured: false, issuer: '', client_id: '', service: '', source: '' }
};

describe('parseStatus', () => {
  it('accepts the documented payload unchanged', () => {
    expect(parseStatus(payload)).toEqual(payload);
  });

  it('fills defaults for missing optional fields', () => {
    const status = parseStatus({ tracking: { state: 'starting' } });
    expect(status).toEqual({
      version: '',
      tracking: {
        mode: 'embedded',
        state: 'starting',
        message: '',
        uri: '',
        mlflow_version: ''
      },
      user: {
        signed_in: false,
        name: '',
        display_name: '',
        email: '',
        groups: [],
        org: ''
      },
      auth: { configured: false, issuer: '', client_id: '', service: '', source: '' }
    });
  });

  it('reads the signed-in user and the sign-in configuration (nulls become empty)', () => {
    const status = parseStatus({
      ...payload,
      user: {
        signed_in: true,
        name: 'alice',
        display_name: 'Alice Liddell',
        email: 'alice@acme.example',
        groups: ['vision', 7, null],
        org: 'acme'
      },
      auth: {
        configured: true,
        issuer: 'http://127.0.0.1:8999',
        client_id: 'infinstor-lab',
        service: 'http://127.0.0.1:5000',
        source: 'server'
      }
    });
    expect(status.user).toEqual({
      signed_in: true,
      name: 'alice',
      display_name: 'Alice Liddell',
      email: 'alice@acme.example',
      groups: ['vision', '7'],
      org: 'acme'
    });
    expect(status.auth?.configured).toBe(true);
    expect(status.auth?.issuer).toBe('http://127.0.0.1:8999');
    expect(status.auth?.source).toBe('server');
    const embedded = parseStatus({
      ...payload,
      user: { signed_in: false, name: 'local', display_name: 'local', email: null, org: null },
      auth: { configured: false, issuer: null }
    });
    expect(embedded.user.email).toBe('');
    expect(embedded.auth).toEqual({ configured: false, issuer: '', client_id: '', service: '', source: '' });
  });

  it('uses the user name when there is no display name', () => {
    const status = parseStatus({
      ...payload,
      user: { signed_in: true, name: 'ada' }
    });
    expect(status.user.display_name).toBe('ada');
  });

  it.each([null, undefined, 'running', [], {}, { tracking: 'running' }])(
    'rejects a payload without a tracking object: %p',
    data => {
      expect(() => parseStatus(data)).toThrow(/no tracking status/);
    }
  );
});

describe('stateLabel / stateKind', () => {
  it.each([
    ['running', 'running', 'ok'],
    ['starting', 'starting', 'pending'],
    ['error', 'error', 'error'],
    ['RUNNING ', 'running', 'ok'],
    ['', 'unknown', 'unknown'],
    ['stopped', 'stopped', 'unknown']
  ])('%p -> label %p, kind %p', (state, label, kind) => {
    expect(stateLabel(state)).toBe(label);
    expect(stateKind(state)).toBe(kind);
  });
});

describe('modeLabel', () => {
  it('labels the embedded service as local', () => {
    expect(modeLabel({ mode: 'embedded', uri: 'http://127.0.0.1:5000' })).toBe(
      'Embedded (local)'
    );
  });

  it('shows the remote URI', () => {
    expect(modeLabel({ mode: 'remote', uri: 'https://mlflow.example.com' })).toBe(
      'Remote: https://mlflow.example.com'
    );
  });

  it('shows "Remote" without a URI', () => {
    expect(modeLabel({ mode: 'remote', uri: '' })).toBe('Remote');
  });

  it('capitalises unknown modes and handles an empty mode', () => {
    expect(modeLabel({ mode: 'hybrid', uri: '' })).toBe('Hybrid');
    expect(modeLabel({ mode: '', uri: '' })).toBe('Unknown');
  });
});

describe('userLabel', () => {
  it('is "local" when not signed in, whatever the name', () => {
    expect(userLabel({ signed_in: false, name: 'ada', display_name: 'Ada' })).toBe(
      'local'
    );
    expect(userLabel(null)).toBe('local');
    expect(userLabel(undefined)).toBe('local');
  });

  it('prefers the display name when signed in', () => {
    expect(
      userLabel({ signed_in: true, name: 'ada', display_name: 'Ada Lovelace' })
    ).toBe('Ada Lovelace');
    expect(userLabel({ signed_in: true, name: 'ada', display_name: ' ' })).toBe('ada');
  });
});

describe('shouldShowMessage / isTransient', () => {
  const tracking = payload.tracking;

  it('hides the message while running', () => {
    expect(shouldShowMessage({ ...tracking, message: 'all good' })).toBe(false);
  });

  it('shows a non-empty message when starting or failed', () => {
    expect(shouldShowMessage({ ...tracking, state: 'starting', message: 'Starting MLflow' })).toBe(true);
    expect(shouldShowMessage({ ...tracking, state: 'error', message: 'port in use' })).toBe(true);
    expect(shouldShowMessage({ ...tracking, state: 'error', message: '  ' })).toBe(false);
  });

  it('is transient only while starting', () => {
    const status = parseStatus(payload) as IStatus;
    expect(isTransient(null)).toBe(false);
    expect(isTransient(status)).toBe(false);
    expect(isTransient({ ...status, tracking: { ...tracking, state: 'starting' } })).toBe(true);
    expect(isTransient({ ...status, tracking: { ...tracking, state: 'error' } })).toBe(false);
  });
});

describe('version mismatch', () => {
  it.each([
    ['0.1.0', '0.1.0'],
    ['v0.1.0', '0.1.0'],
    ['0.1', '0.1.0'],
    ['0.2.0-alpha.1', '0.2.0a1'],
    ['0.2.0-beta.3', '0.2.0b3'],
    ['0.2.0-rc.1', '0.2.0rc1'],
    ['0.2.0-dev.4', '0.2.0.dev4'],
    ['1.0.0+local', '1.0.0']
  ])('%p and %p are the same version', (a, b) => {
    expect(normalizeVersion(a)).toBe(normalizeVersion(b));
    expect(versionMismatch(a, b)).toBeNull();
  });

  it.each([
    ['0.1.0', '0.2.0'],
    ['0.2.0-alpha.1', '0.2.0b1'],
    ['0.2.0-beta.1', '0.2.0a1'],
    ['0.2.0', '0.2.0rc1'],
    ['1.0.0', '1.0.0.post1']
  ])('%p and %p differ', (frontend, server) => {
    expect(versionMismatch(frontend, server)).toEqual({ frontend, server });
  });

  it('ignores unknown versions', () => {
    expect(versionMismatch('0.1.0', '')).toBeNull();
    expect(versionMismatch('', '0.1.0')).toBeNull();
    expect(versionMismatch('unknown', '0.1.0')).toBeNull();
  });

  it('explains what to do', () => {
    const text = versionMismatchMessage({ frontend: '0.1.0', server: '0.2.0' });
    expect(text).toContain('0.1.0');
    expect(text).toContain('0.2.0');
    expect(text).toMatch(/restart Jupyter/);
  });

  it('knows the frontend version from package.json', () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    expect(FRONTEND_VERSION).toBe(require('../../../../package.json').version);
  });
});

describe('notification texts', () => {
  it('fit in a toast without being cut', () => {
    expect(SERVER_EXTENSION_MISSING_NOTIFICATION.length).toBeLessThanOrEqual(
      NOTIFICATION_MAX_LENGTH
    );
    const mismatch = versionMismatchNotification({
      frontend: '10.20.30-alpha.4',
      server: '10.20.31a4'
    });
    expect(mismatch.length).toBeLessThanOrEqual(NOTIFICATION_MAX_LENGTH);
    expect(mismatch).toContain('10.20.31a4');
  });

  it('tell how to enable the server extension', () => {
    expect(SERVER_EXTENSION_MISSING_MESSAGE).toContain(
      'jupyter server extension enable infinstor_jupyterlab'
    );
    expect(SERVER_EXTENSION_MISSING_MESSAGE).toMatch(/restart Jupyter/);
  });
});
