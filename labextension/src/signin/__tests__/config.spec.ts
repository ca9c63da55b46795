import { StatusModel } from '../../status/model';
import { signInConfigUpdate, SignInConfigSync } from '../config';
import { IStatus, parseStatus } from '../../status/status';

const ISSUER = 'https://login.example.com/realms/acme';

function status(mode: 'remote' | 'embedded', auth: object): IStatus {
  return parseStatus({
    version: '0.1.0',
    tracking: { mode, state: 'running', uri: 'https://mlflow.example.com' },
    user: { signed_in: false, name: 'local', display_name: 'local' },
    auth
  });
}

const NONE = { configured: false, issuer: null, client_id: null, source: null };
const FROM_SETTINGS = { configured: true, issuer: ISSUER, client_id: 'lab', source: 'settings' };
const FROM_SERVER = { configured: true, issuer: ISSUER, client_id: 'admin-lab', source: 'server' };

describe('signInConfigUpdate', () => {
  it('sends the settings to a remote server with no provider', () => {
    expect(signInConfigUpdate(status('remote', NONE), { issuer: `${ISSUER}/`, clientId: ' lab ' })).toEqual({
      issuer: ISSUER,
      client_id: 'lab'
    });
  });

  it('sends nothing before a status, for the embedded service, or when nothing changes', () => {
    expect(signInConfigUpdate(null, { issuer: ISSUER, clientId: 'lab' })).toBeNull();
    expect(signInConfigUpdate(status('embedded', NONE), { issuer: ISSUER, clientId: 'lab' })).toBeNull();
    expect(signInConfigUpdate(status('remote', FROM_SETTINGS), { issuer: ISSUER, clientId: 'lab' })).toBeNull();
    expect(signInConfigUpdate(status('remote', NONE), { issuer: '', clientId: '' })).toBeNull();
  });

  it('never overrides a provider set by the server', () => {
    expect(signInConfigUpdate(status('remote', FROM_SERVER), { issuer: 'https://other', clientId: 'x' })).toBeNull();
  });

  it('clears a provider the settings had set, and changes it', () => {
    expect(signInConfigUpdate(status('remote', FROM_SETTINGS), { issuer: '', clientId: '' })).toEqual({
      issuer: '',
      client_id: ''
    });
    expect(signInConfigUpdate(status('remote', FROM_SETTINGS), { issuer: ISSUER, clientId: 'other' })).toEqual({
      issuer: ISSUER,
      client_id: 'other'
    });
  });
});

describe('SignInConfigSync', () => {
  it('sends once, refreshes the status, and reports a refusal once until the settings change', async () => {
    let current: IStatus = status('remote', NONE);
    const model = new StatusModel({ autoStart: false, fetchStatus: async () => current });
    await model.refresh();
    const sent: object[] = [];
    let refuse = true;
    const sync = new SignInConfigSync({
      model,
      send: async body => {
        sent.push(body);
        if (refuse) {
          throw new Error('The issuer must be an https:// URL');
        }
        current = status('remote', { ...FROM_SETTINGS, client_id: (body as any).client_id });
      }
    });
    const failures: string[] = [];
    sync.failed.connect((_, message) => failures.push(message));

    sync.settings = { issuer: 'http://bad.example', clientId: 'lab' };
    await new Promise(r => setTimeout(r, 0));
    expect(failures).toEqual(['The issuer must be an https:// URL']);
    await model.refresh(); // a later status does not resend refused settings
    expect(sent).toHaveLength(1);

    refuse = false;
    sync.settings = { issuer: ISSUER, clientId: 'lab' };
    await new Promise(r => setTimeout(r, 10));
    expect(sent).toHaveLength(2);
    expect(model.status?.auth?.source).toBe('settings');
    await model.refresh();
    expect(sent).toHaveLength(2); // in step: nothing more to send
    sync.dispose();
    model.dispose();
  });
});
