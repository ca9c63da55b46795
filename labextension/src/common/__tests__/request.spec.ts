/**
 * @jest-environment node
 */
import { ServerConnection } from '@jupyterlab/services';

import { apiUrl, InfinStorRequestError, requestAPI } from '../request';
import { fetchStatus } from '../../status/model';

type FetchMock = jest.Mock;

async function failure(promise: Promise<unknown>): Promise<InfinStorRequestError> {
  try {
    await promise;
  } catch (error) {
    return error as InfinStorRequestError;
  }
  throw new Error('Expected the request to fail');
}

function settingsWith(fetch: FetchMock): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    wsUrl: 'ws://localhost:8888/lab-base/',
    token: 'secret-token',
    fetch: fetch as unknown as typeof globalThis.fetch
  });
}

function json(status: number, body: unknown, statusText = ''): Promise<Response> {
  return Promise.resolve(
    new Response(typeof body === 'string' ? body : JSON.stringify(body), {
      status,
      statusText,
      headers: { 'Content-Type': 'application/json' }
    })
  );
}

/**
 * The URL fetched, without the cache-busting query ServerConnection adds to GETs.
 */
function requestUrl(fetch: FetchMock): string {
  const arg = fetch.mock.calls[0][0] as unknown;
  const url = typeof arg === 'string' ? arg : (arg as Request).url;
  return url.replace(/\?\d+$/, '');
}

describe('requestAPI', () => {
  it('builds the URL below infinstor/api', () => {
    const settings = settingsWith(jest.fn());
    expect(apiUrl('status', settings)).toBe(
      'http://localhost:8888/lab-base/infinstor/api/status'
    );
    expect(apiUrl('tracking/restart', settings)).toBe(
      'http://localhost:8888/lab-base/infinstor/api/tracking/restart'
    );
  });

  it('returns the decoded JSON body', async () => {
    const fetch: FetchMock = jest.fn(() => json(200, { version: '0.1.0' }));
    const data = await requestAPI<{ version: string }>('status', {}, settingsWith(fetch));
    expect(data).toEqual({ version: '0.1.0' });
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(requestUrl(fetch)).toBe('http://localhost:8888/lab-base/infinstor/api/status');
  });

  it('sends the method and authenticates like other Jupyter requests', async () => {
    const fetch: FetchMock = jest.fn(() => json(200, { state: 'starting' }));
    await requestAPI('tracking/restart', { method: 'POST' }, settingsWith(fetch));
    const arg = fetch.mock.calls[0][0] as unknown as Request | string;
    const init = (fetch.mock.calls[0][1] ?? {}) as RequestInit;
    const method = typeof arg === 'string' ? init.method : arg.method;
    expect(method).toBe('POST');
    const headers = new Headers(typeof arg === 'string' ? init.headers : arg.headers);
    expect(headers.get('Authorization')).toBe('token secret-token');
  });

  it('returns undefined for an empty body', async () => {
    const fetch: FetchMock = jest.fn(() => Promise.resolve(new Response(null, { status: 204 })));
    await expect(requestAPI('anything', {}, settingsWith(fetch))).resolves.toBeUndefined();
  });

  it('throws the server message and reason on an error status', async () => {
    const fetch: FetchMock = jest.fn(() =>
      json(503, { message: 'The tracking service is not running.', reason: 'tracking-down' })
    );
    const error = await failure(requestAPI('status', {}, settingsWith(fetch)));
    expect(error).toBeInstanceOf(InfinStorRequestError);
    expect(error).toBeInstanceOf(Error);
    expect(error.status).toBe(503);
    expect(error.message).toBe('The tracking service is not running.');
    expect(error.reason).toBe('tracking-down');
    expect(error.isNetworkError).toBe(false);
  });

  it('falls back to the HTTP status for a non-JSON error page', async () => {
    const fetch: FetchMock = jest.fn(() =>
      Promise.resolve(
        new Response('<html>404: Not Found</html>', { status: 404, statusText: 'Not Found' })
      )
    );
    const error = await failure(requestAPI('status', {}, settingsWith(fetch)));
    expect(error).toBeInstanceOf(InfinStorRequestError);
    expect(error.status).toBe(404);
    expect(error.message).toMatch(/HTTP 404 Not Found/);
    expect(error.message).toContain('/infinstor/api/status');
  });

  it('throws a clear error when the server cannot be reached', async () => {
    const fetch: FetchMock = jest.fn(() => Promise.reject(new TypeError('Failed to fetch')));
    const error = await failure(requestAPI('status', {}, settingsWith(fetch)));
    expect(error).toBeInstanceOf(InfinStorRequestError);
    expect(error.status).toBe(0);
    expect(error.isNetworkError).toBe(true);
    expect(error.message).toMatch(/Could not reach the Jupyter server/);
    expect(error.message).toContain('Failed to fetch');
  });

  it('rejects a 2xx answer that is not JSON', async () => {
    const fetch: FetchMock = jest.fn(() =>
      Promise.resolve(new Response('<html>login</html>', { status: 200 }))
    );
    const error = await failure(requestAPI('status', {}, settingsWith(fetch)));
    expect(error).toBeInstanceOf(InfinStorRequestError);
    expect(error.reason).toBe('invalid-json');
  });
});

describe('fetchStatus', () => {
  const realMakeSettings = ServerConnection.makeSettings;

  afterEach(() => {
    (ServerConnection as any).makeSettings = realMakeSettings;
  });

  it('requests GET status and validates the payload', async () => {
    const fetch: FetchMock = jest.fn(() =>
      json(200, {
        version: '0.1.0',
        tracking: { mode: 'embedded', state: 'starting', message: '', uri: '', mlflow_version: '3.17.2' },
        user: { signed_in: false, name: 'local', display_name: 'local' }
      })
    );
    const settings = settingsWith(fetch);
    (ServerConnection as any).makeSettings = () => settings;
    const status = await fetchStatus();
    expect(status.tracking.state).toBe('starting');
    expect(requestUrl(fetch)).toBe('http://localhost:8888/lab-base/infinstor/api/status');
  });
});
