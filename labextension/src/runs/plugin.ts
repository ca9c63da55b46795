/**
 * The runs views' commands (palette: open an experiment's runs, open a run, compare runs),
 * their main-area tabs (restored after a reload), and the shared runs models and view
 * settings. Set up by the MLflow plugin, which owns the MLflow client.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IStateDB } from '@jupyterlab/statedb';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';

import { IMlflowClient } from '../tokens';
import { IMlflowActions } from '../mlflow/views/common';
import { wrap } from '../mlflow/widgets';
import { RunsModelRegistry } from './registry';
import { RunsViewStateStore } from './viewState';
import { CompareWidget, RunPageWidget, RunsWidget } from './widgets';

export namespace RunsCommandIDs {
  /** Args: `experimentId`, optional `name`; without an id, asks which experiment. */
  export const openRuns = 'infinstor:mlflow-open-runs';
  /** Args: `runId`; without it, asks for one. */
  export const openRun = 'infinstor:mlflow-open-run';
  /** Args: `runIds` (two or more); without them, the runs ticked in the current runs tab. */
  export const compareRuns = 'infinstor:mlflow-compare-runs';
}

export interface IRunsViews {
  registry: RunsModelRegistry;
  store: RunsViewStateStore;
}

export function setUpRunsViews(options: {
  app: JupyterFrontEnd;
  client: IMlflowClient;
  actions: IMlflowActions;
  trans: TranslationBundle;
  state: IStateDB | null;
  restorer: ILayoutRestorer | null;
  palette: ICommandPalette | null;
  rendermime: IRenderMimeRegistry | null;
  category: string;
}): IRunsViews {
  const { app, client, actions, trans } = options;
  const { commands, shell } = app;
  const store = new RunsViewStateStore({ state: options.state });
  const registry = new RunsModelRegistry({ client, store });
  // One tracker per kind of tab: the layout restorer reopens each with its own command.
  type Tab<T extends ReactWidget> = MainAreaWidget<T>;
  const trackers = {
    runs: new WidgetTracker<Tab<RunsWidget>>({ namespace: 'infinstor-runs' }),
    run: new WidgetTracker<Tab<RunPageWidget>>({ namespace: 'infinstor-run' }),
    compare: new WidgetTracker<Tab<CompareWidget>>({ namespace: 'infinstor-compare' })
  };

  const show = <T extends ReactWidget>(
    tracker: WidgetTracker<Tab<T>>,
    id: string,
    make: () => T,
    label: string
  ): Tab<T> => {
    const open = tracker.find(w => w.id === id);
    if (open) {
      shell.activateById(id);
      return open;
    }
    const content = make();
    const widget = wrap(content, id, content.title.label || label) as Tab<T>;
    // The tab's label follows the content's (names come after the first request).
    content.title.changed.connect(() => {
      widget.title.label = content.title.label;
      widget.title.caption = content.title.caption;
    });
    void tracker.add(widget);
    shell.add(widget, 'main');
    shell.activateById(id);
    return widget;
  };

  const currentRunsTab = (): RunsWidget | null => trackers.runs.currentWidget?.content ?? null;

  commands.addCommand(RunsCommandIDs.openRuns, {
    label: args => (args['name'] ? trans.__('Open the runs of %1', String(args['name'])) : trans.__('Open the runs of an MLflow experiment…')),
    caption: trans.__("An experiment's runs in a tab: columns, sort, filter, nested runs, compare"),
    execute: async args => {
      let experimentId = typeof args['experimentId'] === 'string' ? args['experimentId'] : '';
      let name = typeof args['name'] === 'string' ? args['name'] : '';
      if (!experimentId) {
        const page = await client.searchExperiments({ orderBy: ['last_update_time DESC'], maxResults: 500 });
        if (!page.items.length) {
          return;
        }
        const choice = await InputDialog.getItem({
          title: trans.__('Open the runs of an experiment'),
          items: page.items.map(e => e.name),
          okLabel: trans.__('Open'),
          cancelLabel: trans.__('Cancel')
        });
        const chosen = choice.button.accept ? page.items.find(e => e.name === choice.value) : undefined;
        if (!chosen) {
          return;
        }
        experimentId = chosen.experiment_id;
        name = chosen.name;
      }
      // The saved settings first: the first request already has the saved filter and sort.
      await store.load(experimentId);
      return show(
        trackers.runs,
        `infinstor-runs-${experimentId}`,
        () => new RunsWidget({ registry, experimentId, experimentName: name, actions, trans }),
        trans.__('Runs')
      );
    }
  });

  commands.addCommand(RunsCommandIDs.openRun, {
    label: args => (args['runId'] ? trans.__('Open run %1', String(args['runId']).slice(0, 8)) : trans.__('Open an MLflow run…')),
    caption: trans.__("A run's page: overview, charts, artifacts, tags"),
    execute: async args => {
      let runId = typeof args['runId'] === 'string' ? args['runId'] : '';
      if (!runId) {
        const answer = await InputDialog.getText({
          title: trans.__('Open an MLflow run'),
          label: trans.__('Run ID'),
          okLabel: trans.__('Open'),
          cancelLabel: trans.__('Cancel')
        });
        runId = answer.button.accept ? (answer.value ?? '').trim() : '';
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(runId)) {
          return;
        }
      }
      return show(
        trackers.run,
        `infinstor-run-${runId}`,
        () => new RunPageWidget({ client, runId, actions, rendermime: options.rendermime, trans }),
        trans.__('Run')
      );
    }
  });

  const runIdsOf = (args: Record<string, unknown>): string[] =>
    Array.isArray(args['runIds']) ? (args['runIds'] as unknown[]).filter((x): x is string => typeof x === 'string') : currentRunsTab()?.selection ?? [];

  commands.addCommand(RunsCommandIDs.compareRuns, {
    label: trans.__('Compare MLflow runs'),
    caption: trans.__('Compare two or more runs: charts of every shared metric, a parameter against a metric, a table'),
    isEnabled: args => runIdsOf(args).length >= 2,
    execute: args => {
      const runIds = [...new Set(runIdsOf(args))];
      if (runIds.length < 2) {
        return;
      }
      return show(
        trackers.compare,
        `infinstor-compare-${runIds.join('-').slice(0, 200)}`,
        () => new CompareWidget({ client, runIds, actions, trans }),
        trans.__('Compare')
      );
    }
  });

  // After a reload, the tabs that were open come back (with the restored layout).
  const restorer = options.restorer;
  if (restorer) {
    void restorer.restore(trackers.runs, {
      command: RunsCommandIDs.openRuns,
      args: w => ({ experimentId: w.content.experimentId, name: w.content.experimentName }),
      name: w => w.content.experimentId
    });
    void restorer.restore(trackers.run, {
      command: RunsCommandIDs.openRun,
      args: w => ({ runId: w.content.model.runId }),
      name: w => w.content.model.runId
    });
    void restorer.restore(trackers.compare, {
      command: RunsCommandIDs.compareRuns,
      args: w => ({ runIds: w.content.model.runIds }),
      name: w => w.content.model.runIds.join(',')
    });
  }

  if (options.palette) {
    for (const command of [RunsCommandIDs.openRuns, RunsCommandIDs.openRun, RunsCommandIDs.compareRuns]) {
      options.palette.addItem({ command, category: options.category });
    }
  }

  return { registry, store };
}
