import { nullTranslator } from '@jupyterlab/translation';
import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';

import { InfinStorRequestError } from '../../common/request';
import { StatusModel } from '../../status/model';
import { SidebarContent } from '../sidebar';
import { IStatus, ITrackingStatus, SERVER_EXTENSION_MISSING_MESSAGE } from '../../status/status';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const trans = nullTranslator.load('infinstor_jupyterlab');

function makeStatus(
  tracking: Partial<ITrackingStatus> = {},
  extra: Partial<IStatus> = {}
): IStatus {
  return {
    version: '0.1.0',
    tracking: {
      mode: 'embedded',
      state: 'running',
      message: '',
      uri: 'http://127.0.0.1:5123',
      mlflow_version: '3.17.2',
      ...tracking
    },
    user: { signed_in: false, name: 'local', display_name: 'local' },
    ...extra
  };
}

describe('SidebarContent', () => {
  let container: HTMLDivElement;
  let root: Root;
  let model: StatusModel;

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
  });

  afterEach(() => {
    unmountReactRoot(container, root);
    model?.dispose();
  });

  async function renderWith(
    answer: IStatus | Error,
    props: Partial<React.ComponentProps<typeof SidebarContent>> = {}
  ) {
    model = new StatusModel({
      autoStart: false,
      fetchStatus: () =>
        answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer)
    });
    const render = () =>
      root.render(
        <SidebarContent model={model} trans={trans} frontendVersion="0.1.0" {...props} />
      );
    model.changed.connect(() => act(render));
    act(render);
    await act(() => model.refresh());
  }

  const byTestId = (id: string) =>
    container.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;

  it('shows a loading state before the first answer', () => {
    model = new StatusModel({ autoStart: false, fetchStatus: () => new Promise(() => undefined) });
    act(() => root.render(<SidebarContent model={model} trans={trans} />));
    expect(byTestId('infinstor-loading')?.textContent).toMatch(/Checking/);
    expect(byTestId('infinstor-tracking-state')).toBeNull();
  });

  it('shows a running embedded service and the local user', async () => {
    await renderWith(makeStatus());
    expect(byTestId('infinstor-tracking-state')?.textContent).toBe('running');
    expect(byTestId('infinstor-tracking-mode')?.textContent).toBe('Embedded (local)');
    expect(byTestId('infinstor-user')?.textContent).toBe('local');
    expect(byTestId('infinstor-tracking-uri')?.textContent).toBe('http://127.0.0.1:5123');
    expect(byTestId('infinstor-tracking-message')).toBeNull();
    expect(byTestId('infinstor-restart')).toBeNull();
    expect(byTestId('infinstor-version-mismatch')).toBeNull();
    expect(container.querySelector('.jp-InfinStor-dot-ok')).not.toBeNull();
  });

  it('shows the message while starting', async () => {
    await renderWith(makeStatus({ state: 'starting', message: 'Starting MLflow…' }));
    expect(byTestId('infinstor-tracking-state')?.textContent).toBe('starting');
    expect(byTestId('infinstor-tracking-message')?.textContent).toBe('Starting MLflow…');
    expect(container.querySelector('.jp-InfinStor-dot-pending')).not.toBeNull();
  });

  it('offers a restart when the embedded service failed', async () => {
    const restart = jest.fn(async () => makeStatus({ state: 'starting' }).tracking);
    await renderWith(makeStatus({ state: 'error', message: 'Port 5000 in use' }), { restart });
    expect(byTestId('infinstor-tracking-state')?.textContent).toBe('error');
    expect(byTestId('infinstor-tracking-message')?.textContent).toBe('Port 5000 in use');
    const button = byTestId('infinstor-restart') as HTMLButtonElement;
    expect(button).not.toBeNull();
    const refresh = jest.spyOn(model, 'refresh').mockResolvedValue(undefined);
    await act(async () => {
      button.click();
    });
    expect(restart).toHaveBeenCalledTimes(1);
    expect(model.status?.tracking.state).toBe('starting');
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(byTestId('infinstor-tracking-state')?.textContent).toBe('starting');
  });

  it('reports a failed restart', async () => {
    const restart = jest.fn(async () => {
      throw new InfinStorRequestError('Restart not allowed', { status: 403 });
    });
    await renderWith(makeStatus({ state: 'error', message: 'crashed' }), { restart });
    await act(async () => {
      byTestId('infinstor-restart')!.click();
    });
    expect(container.textContent).toContain(
      'Could not restart the tracking service: Restart not allowed'
    );
  });

  it('shows the remote URI and the signed-in user', async () => {
    await renderWith(
      makeStatus(
        { mode: 'remote', uri: 'https://mlflow.example.com' },
        { user: { signed_in: true, name: 'ada', display_name: 'Ada Lovelace' } }
      )
    );
    expect(byTestId('infinstor-tracking-mode')?.textContent).toBe(
      'Remote: https://mlflow.example.com'
    );
    expect(byTestId('infinstor-tracking-uri')).toBeNull();
    expect(byTestId('infinstor-user')?.textContent).toBe('Ada Lovelace');
  });

  it('warns about a version mismatch', async () => {
    await renderWith(makeStatus({}, { version: '0.2.0' }));
    const warning = byTestId('infinstor-version-mismatch');
    expect(warning?.textContent).toContain('0.1.0');
    expect(warning?.textContent).toContain('0.2.0');
  });

  it('explains how to enable a missing server extension', async () => {
    await renderWith(new InfinStorRequestError('Not Found', { status: 404 }));
    expect(byTestId('infinstor-server-missing')?.textContent).toBe(
      SERVER_EXTENSION_MISSING_MESSAGE
    );
    expect(SERVER_EXTENSION_MISSING_MESSAGE).toContain(
      'jupyter server extension enable infinstor_jupyterlab'
    );
    expect(byTestId('infinstor-error')).toBeNull();
  });

  it('shows other errors with what to do', async () => {
    await renderWith(
      new InfinStorRequestError('Could not reach the Jupyter server', { status: 0 })
    );
    const banner = byTestId('infinstor-error');
    expect(banner?.textContent).toContain('Could not reach the Jupyter server');
    expect(banner?.textContent).toMatch(/press Refresh/);
    expect(banner?.getAttribute('role')).toBe('alert');
  });

  it('refreshes on click', async () => {
    const status = makeStatus();
    await renderWith(status);
    const spy = jest.spyOn(model, 'refresh').mockResolvedValue(undefined);
    await act(async () => {
      byTestId('infinstor-refresh')!.click();
    });
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it("the header's Refresh refreshes the lists below too, not only the status", async () => {
    const list = { refresh: jest.fn().mockResolvedValue(undefined), checkedAt: Date.now() };
    await renderWith(makeStatus(), { sections: [list] });
    jest.spyOn(model, 'refresh').mockResolvedValue(undefined);
    await act(async () => {
      byTestId('infinstor-refresh')!.click();
    });
    expect(list.refresh).toHaveBeenCalledTimes(1);
  });

  it('"Last checked" is the oldest check of what is shown, not the fresh status alone', async () => {
    // A list last checked 12 minutes ago (the stale list the footer hid before).
    const stale = new Date(Date.now() - 12 * 60 * 1000);
    await renderWith(makeStatus(), { sections: [{ refresh: async () => undefined, checkedAt: stale.getTime() }] });
    const pad = (n: number) => String(n).padStart(2, '0');
    expect(byTestId('infinstor-last-checked')?.textContent).toBe(
      `Last checked ${pad(stale.getHours())}:${pad(stale.getMinutes())}:${pad(stale.getSeconds())}`
    );
  });
});
