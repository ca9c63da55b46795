/**
 * The runs tab and the sidebar's list, rendered (jsdom): a refused filter clears the rows and
 * the count and says why; picked columns and the list's metric survive the view going away
 * and coming back (switching tabs), because they live in the per-experiment settings.
 */
import React, { act } from 'react';
import { Signal } from '@lumino/signaling';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';
import { InfinStorRequestError } from '../../common/request';
import { IRun } from '../../mlflow/types';
import { IMlflowActions } from '../../mlflow/views/common';
import { RunsModelRegistry } from '../registry';
import { RunsList } from '../RunsList';
import { RunsTab } from '../RunsTab';
import { RunsViewStateStore } from '../viewState';
import { IMlflowClient } from '../../tokens';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const EXPERIMENT = { experiment_id: '7', name: 'sweep' } as any;

function makeRun(i: number): IRun {
  return {
    info: { run_id: `r${i}`, run_name: `run-${i}`, experiment_id: '7', status: 'FINISHED', start_time: Date.now() - i * 60000 },
    data: {
      metrics: [{ key: 'loss', value: 0.1 * i + 0.05, step: 0 }, { key: 'acc', value: 0.9, step: 0 }],
      params: [{ key: 'lr', value: String(i) }, { key: 'batch', value: '32' }],
      tags: []
    }
  };
}

/** What the views ask of the client (this suite runs in jsdom, without fetch). */
function fakeClient() {
  const filters: string[] = [];
  const client = {
    searchRuns: async (query: { filter?: string }) => {
      filters.push(query.filter ?? '');
      if (query.filter?.includes('<<')) {
        throw new InfinStorRequestError("Invalid clause(s) in filter string: 'metrics.loss', '<<'", {
          status: 400,
          reason: 'INVALID_PARAMETER_VALUE'
        });
      }
      return { items: [1, 2, 3].map(makeRun), nextPageToken: null };
    },
    changed: new Signal<unknown, unknown>({})
  } as unknown as IMlflowClient;
  return { client, filters };
}

const actions: IMlflowActions = {
  openRun: () => undefined,
  compareRuns: () => undefined,
  openUi: () => undefined,
  openNotebook: () => undefined,
  openRuns: () => undefined,
  openJob: () => undefined
};

async function settle(): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 10; i++) {
      await new Promise(resolve => setTimeout(resolve, 0));
    }
  });
}

describe('runs views (rendered)', () => {
  let container: HTMLDivElement;
  let root: Root;
  const q = (testid: string) => container.querySelector(`[data-testid="${testid}"]`);

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
  });
  afterEach(() => unmountReactRoot(container, root));

  it('a filter MLflow refuses: a clear message, no rows, no count of the old rows', async () => {
    const { client } = fakeClient();
    const store = new RunsViewStateStore({ state: null });
    const registry = new RunsModelRegistry({ client, store, modelOptions: { interval: 60000 } });
    const model = registry.acquire('7');
    model.setVisible({}, true);
    act(() => root.render(<RunsTab model={model} store={store} experimentName="sweep" actions={actions} />));
    await settle();
    expect(q('infinstor-runs-count')!.textContent).toBe('3 runs');
    expect(q('infinstor-runs-table')).not.toBeNull();

    act(() => store.update('7', { filter: 'metrics.loss << 1' }));
    await settle();
    const error = q('infinstor-filter-error')!;
    expect(error.textContent).toContain('This filter is not valid, so no runs are shown.');
    expect(error.textContent).toContain('not MLflow search syntax');
    expect(error.textContent).toContain("MLflow says: Invalid clause(s) in filter string");
    expect(q('infinstor-runs-table')).toBeNull();
    expect(q('infinstor-runs-count')!.textContent).toBe('no runs');
    registry.release('7');
  });

  it('picked columns and the sidebar metric survive switching away and back', async () => {
    const { client } = fakeClient();
    const store = new RunsViewStateStore({ state: null });
    const registry = new RunsModelRegistry({ client, store, modelOptions: { interval: 60000 } });
    const model = registry.acquire('7');
    model.setVisible({}, true);
    const headers = () =>
      [...container.querySelectorAll('[role="columnheader"][data-column]')].map(h => h.getAttribute('data-column'));

    act(() => root.render(<RunsTab model={model} store={store} experimentName="sweep" actions={actions} />));
    await settle();
    // Automatic: what differs (loss, lr), not what does not (acc, batch).
    expect(headers()).toEqual(['name', 'start', 'duration', 'metric:loss', 'param:lr']);

    act(() => (q('infinstor-columns') as HTMLButtonElement).click());
    const batch = container.querySelector('label[data-column="param:batch"] input') as HTMLInputElement;
    act(() => batch.click());
    expect(headers()).toEqual(['name', 'start', 'duration', 'metric:loss', 'param:lr', 'param:batch']);

    // Another view (the sidebar's Models tab, another main-area tab), then back.
    act(() => root.render(<div />));
    act(() => root.render(<RunsTab model={model} store={store} experimentName="sweep" actions={actions} />));
    await settle();
    expect(headers()).toEqual(['name', 'start', 'duration', 'metric:loss', 'param:lr', 'param:batch']);

    // The sidebar's list: its metric too.
    act(() => root.render(<RunsList model={model} store={store} experiment={EXPERIMENT} actions={actions} onBack={() => undefined} />));
    await settle();
    const select = q('infinstor-list-metric') as HTMLSelectElement;
    expect(select.value).toBe('acc');
    act(() => {
      select.value = 'loss';
      select.dispatchEvent(new Event('change', { bubbles: true }));
    });
    act(() => root.render(<div />));
    act(() => root.render(<RunsList model={model} store={store} experiment={EXPERIMENT} actions={actions} onBack={() => undefined} />));
    await settle();
    expect((q('infinstor-list-metric') as HTMLSelectElement).value).toBe('loss');
    registry.release('7');
  });
});
