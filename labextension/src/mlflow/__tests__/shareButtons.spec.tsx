import { Signal } from '@lumino/signaling';
import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';

import { InfinStorRequestError } from '../../common/request';
import { MlflowClient } from '../client';
import { RunsModelRegistry } from '../../runs/registry';
import { RunsViewStateStore } from '../../runs/viewState';
import { ExperimentsModel, RegisteredModelsModel } from '../models';
import { IWhoAmI, SharingClient, SharingSupport } from '../sharing';
import { IMlflowActions } from '../views/common';
import { MlflowBrowser, MlflowBrowserModel } from '../views/browser';
import { ExperimentsList } from '../views/experiments';
import { ModelsPanel } from '../views/models';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const EXPERIMENT = { experiment_id: '12', name: 'churn', creation_time: 1, last_update_time: 1, tags: [] } as any;
const MODEL = { name: 'churn model', latest_versions: [], last_updated_timestamp: 1 } as any;

/** What the views ask of the client (this suite runs in jsdom, without fetch). */
const client = {
  searchExperiments: async () => ({ items: [EXPERIMENT], nextPageToken: null }),
  searchRegisteredModels: async () => ({ items: [MODEL], nextPageToken: null }),
  searchRuns: async () => ({ items: [], nextPageToken: null }),
  changed: new Signal<unknown, unknown>({})
} as unknown as MlflowClient;

class Whoami extends SharingClient {
  status = 200;
  constructor() {
    super(client);
  }
  async whoami(): Promise<IWhoAmI> {
    if (this.status !== 200) {
      throw new InfinStorRequestError('No such endpoint', { status: this.status, reason: 'ENDPOINT_NOT_FOUND' });
    }
    return { username: 'alice', org: 'acme', groups: [], email: '', admin: false, auth: 'oidc' };
  }
}

const actions: IMlflowActions = {
  openRun: () => undefined,
  compareRuns: () => undefined,
  openUi: () => undefined,
  openNotebook: () => undefined,
  openRuns: () => undefined,
  openJob: () => undefined
};

describe('Share… buttons in the MLflow browser', () => {
  let container: HTMLDivElement;
  let root: Root;

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
  });

  afterEach(() => {
    unmountReactRoot(container, root);
  });

  async function settle(): Promise<void> {
    await act(async () => {
      for (let i = 0; i < 10; i++) {
        await new Promise(resolve => setTimeout(resolve, 0));
      }
    });
  }

  it.each([
    [200, true],
    [404, false]
  ])('whoami %i: buttons shown %s on experiments, the runs header and models', async (status, shown) => {
    const whoami = new Whoami();
    whoami.status = status;
    const support = new SharingSupport(whoami);
    await support.update('service');
    const experiments = new ExperimentsModel({ client });
    const models = new RegisteredModelsModel({ client });
    const store = new RunsViewStateStore({ state: null });
    const browser = new MlflowBrowserModel({ client, runs: { store, registry: new RunsModelRegistry({ client, store }) } });
    (browser as any).sharing = support;

    act(() => root.render(<ExperimentsList model={experiments} actions={actions} sharing={support} onOpen={() => undefined} />));
    await act(() => experiments.refresh());
    const item = container.querySelector('[data-testid="infinstor-experiment-item"]')!;
    expect(item).not.toBeNull();
    const share = item.querySelector('[data-testid="infinstor-experiment-share"]');
    expect(share !== null).toBe(shown);
    if (share) {
      expect(share.getAttribute('aria-label')).toBe('Share churn…');
    }

    act(() => browser.openExperiment(EXPERIMENT));
    act(() => root.render(<MlflowBrowser model={browser} actions={actions} />));
    await settle();
    expect(container.querySelector('[data-testid="infinstor-runs-share"]') !== null).toBe(shown);

    act(() => root.render(<ModelsPanel model={models} actions={actions} sharing={support} />));
    await act(() => models.refresh());
    const modelShare = container.querySelector('[data-testid="infinstor-model-item"] [data-testid="infinstor-model-share"]');
    expect(modelShare !== null).toBe(shown);
    if (modelShare) {
      expect(modelShare.getAttribute('aria-label')).toBe('Share churn model…');
    }
    act(() => browser.openExperiment(null));
    experiments.dispose();
    models.dispose();
  });

  it('hides the buttons while no check has answered (no support object, or unknown)', async () => {
    const experiments = new ExperimentsModel({ client });
    act(() => root.render(<ExperimentsList model={experiments} actions={actions} onOpen={() => undefined} />));
    await act(() => experiments.refresh());
    expect(container.querySelector('[data-testid="infinstor-experiment-item"]')).not.toBeNull();
    expect(container.querySelector('[data-testid="infinstor-experiment-share"]')).toBeNull();
    const support = new SharingSupport(new Whoami());
    act(() => root.render(<ExperimentsList model={experiments} actions={actions} sharing={support} onOpen={() => undefined} />));
    expect(container.querySelector('[data-testid="infinstor-experiment-share"]')).toBeNull();
    await act(() => support.update('service'));
    expect(container.querySelector('[data-testid="infinstor-experiment-share"]')).not.toBeNull();
    experiments.dispose();
  });
});
