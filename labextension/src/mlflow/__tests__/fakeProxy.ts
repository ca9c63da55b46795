// The lab's MLflow proxy, faked for the specs (not a spec itself): a ServerConnection fetch
// that routes by proxied path and records every call.
import { ServerConnection } from '@jupyterlab/services';

import { MlflowClient } from '../client';

export type Call = { method: string; path: string; query: URLSearchParams; body: any };
export type Answer = { status?: number; body: any };
export type Routes = Record<string, (call: Call) => Answer | Promise<Answer>>;

export function fakeProxy(routes: Routes): { client: MlflowClient; calls: Call[]; fetch: jest.Mock } {
  const calls: Call[] = [];
  const fetch = jest.fn(async (input: RequestInfo, init?: RequestInit) => {
    const request = typeof input === 'string' ? new Request(input, init) : input;
    const url = new URL(request.url);
    const prefix = '/lab/infinstor/api/mlflow/';
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
    const text = request.method === 'GET' ? '' : await request.text();
    const call: Call = { method: request.method, path, query: url.searchParams, body: text ? JSON.parse(text) : null };
    calls.push(call);
    const handler = routes[path];
    const answer = handler ? await handler(call) : { status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND', message: `no ${path}` } };
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { 'Content-Type': 'application/json' }
    });
  });
  const client = new MlflowClient({
    serverSettings: ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/lab/',
      wsUrl: 'ws://localhost:8888/lab/',
      token: 't',
      fetch: fetch as unknown as typeof globalThis.fetch
    })
  });
  return { client, calls, fetch };
}
