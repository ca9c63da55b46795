import { nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';

import { PollingListView, PollingPanel } from '../PollingPanel';
import { PollingModel } from '../pollingModel';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;
// ReactWidget waits for an idle callback after rendering; jsdom has none.
(globalThis as any).requestIdleCallback ??= (callback: () => void) => setTimeout(callback, 0);

const testIcon = new LabIcon({
  name: 'infinstor-test:polling',
  svgstr: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"></svg>'
});

/** A polled list of names; tests set `names` or `failure` before a refresh. */
class NamesModel extends PollingModel<string[]> {
  constructor() {
    super({ name: 'test:names', interval: 1000, maxInterval: 1000, autoStart: false, standby: 'never' });
  }

  names: string[] = [];
  failure: Error | null = null;
  shown: string[] = [];

  protected async request(): Promise<string[]> {
    if (this.failure) {
      throw this.failure;
    }
    return [...this.names];
  }

  protected apply(names: string[]): void {
    this.shown = names;
  }

  protected pollInterval(): number {
    return 1000;
  }
}

function NamesView(props: { model: NamesModel; notice?: string }): JSX.Element {
  const { model } = props;
  return (
    <PollingListView
      model={model}
      className="test-names"
      icon={testIcon}
      title="Names"
      refreshLabel="Refresh names"
      testIdPrefix="test-names"
      describeError={error => `Could not list names: ${error.message}`}
      loadingText="Loading names…"
      notices={props.notice && <p data-testid="test-notice">{props.notice}</p>}
      body={
        model.shown.length === 0 ? (
          <p data-testid="test-empty">none</p>
        ) : (
          <ul data-testid="test-list">
            {model.shown.map(name => (
              <li key={name}>{name}</li>
            ))}
          </ul>
        )
      }
    >
      <footer data-testid="test-footer">after the list</footer>
    </PollingListView>
  );
}

const byTestId = (root: HTMLElement, id: string) =>
  root.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;

describe('PollingListView', () => {
  let container: HTMLDivElement;
  let root: Root;
  let model: NamesModel;

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
    model = new NamesModel();
  });

  afterEach(() => {
    unmountReactRoot(container, root);
    model.dispose();
  });

  const render = (notice?: string) => act(() => root.render(<NamesView model={model} notice={notice} />));

  it('shows the header and a loading status until the first answer, then the body', async () => {
    render();
    expect(container.querySelector('.test-names h2')?.textContent).toBe('Names');
    expect(container.querySelector('[role="status"]')?.textContent).toBe('Loading names…');
    expect(byTestId(container, 'test-empty')).toBeNull();
    expect(byTestId(container, 'test-footer')).not.toBeNull();
    model.names = ['ann', 'bob'];
    await act(() => model.refresh());
    render();
    expect(container.querySelector('[role="status"]')).toBeNull();
    expect(byTestId(container, 'test-list')?.textContent).toBe('annbob');
  });

  it('shows the empty state the view gives once loaded', async () => {
    await act(() => model.refresh());
    render();
    expect(byTestId(container, 'test-empty')).not.toBeNull();
  });

  it('shows a failed request above the notices and the last data', async () => {
    model.names = ['ann'];
    await act(() => model.refresh());
    model.failure = new Error('boom');
    await act(() => model.refresh());
    render('action failed');
    const banner = byTestId(container, 'test-names-error');
    expect(banner?.getAttribute('role')).toBe('alert');
    expect(banner?.textContent).toBe('Could not list names: boom');
    expect(banner?.nextElementSibling).toBe(byTestId(container, 'test-notice'));
    expect(byTestId(container, 'test-list')?.textContent).toBe('ann');
  });

  it('refreshes the model from its refresh button', async () => {
    render();
    model.names = ['cy'];
    const button = byTestId(container, 'test-names-refresh') as HTMLButtonElement;
    expect(button.getAttribute('aria-label')).toBe('Refresh names');
    await act(async () => {
      button.click();
      await new Promise(resolve => setTimeout(resolve, 10));
    });
    expect(model.shown).toEqual(['cy']);
  });
});

class NamesPanel extends PollingPanel<NamesModel> {
  constructor(model: NamesModel) {
    super({
      model,
      translator: nullTranslator,
      id: 'test-names-panel',
      className: 'test-namesPanel',
      icon: testIcon,
      caption: 'All the names',
      label: 'Names region'
    });
  }

  protected renderView(): JSX.Element {
    return <NamesView model={this.model} />;
  }
}

describe('PollingPanel', () => {
  it('is a labelled region that renders its view again when the model changes', async () => {
    const model = new NamesModel();
    const panel = new NamesPanel(model);
    expect(panel.id).toBe('test-names-panel');
    expect(panel.hasClass('test-namesPanel')).toBe(true);
    expect(panel.title.icon).toBe(testIcon);
    expect(panel.title.caption).toBe('All the names');
    expect(panel.node.getAttribute('role')).toBe('region');
    expect(panel.node.getAttribute('aria-label')).toBe('Names region');
    await act(async () => {
      Widget.attach(panel, document.body);
      panel.update();
      await panel.renderPromise;
    });
    expect(panel.node.querySelector('[role="status"]')?.textContent).toBe('Loading names…');
    model.names = ['dee'];
    await act(() => model.refresh());
    expect(byTestId(panel.node, 'test-list')?.textContent).toBe('dee');
    act(() => panel.dispose());
    model.dispose();
  });
});
