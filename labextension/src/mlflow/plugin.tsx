import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import React from 'react';

import { SIDEBAR_ID, InfinStorSidebar } from '../sidebar/sidebar';
import { MlflowClient } from './client';
import { IMlflowActions } from './views/common';
import { createExperimentDialog } from './views/experiments';
import { MlflowBrowser, MlflowBrowserModel } from './views/browser';
import { CompareWidget, createMlflowUiWidget, RunDetailWidget, wrap } from './widgets';
import { sharingKey } from './sharing';

export const MLFLOW_PLUGIN_ID = 'infinstor-jupyterlab:mlflow';

export namespace MlflowCommandIDs {
  export const openRun = 'infinstor:mlflow-open-run';
  export const compareRuns = 'infinstor:mlflow-compare-runs';
  export const openInMlflowUi = 'infinstor:mlflow-open-in-ui';
  export const showExperiments = 'infinstor:mlflow-show-experiments';
  export const showNotebookRuns = 'infinstor:mlflow-show-notebook-runs';
  export const showModels = 'infinstor:mlflow-show-models';
  export const newExperiment = 'infinstor:mlflow-new-experiment';
  export const refresh = 'infinstor:mlflow-refresh';
}

const CATEGORY = 'InfinStor';

/**
 * Experiments, runs, run detail, comparison, this notebook's runs and
 * registered models, in the InfinStor sidebar and main-area tabs.
 */
export const mlflowPlugin: JupyterFrontEndPlugin<void> = {
  id: MLFLOW_PLUGIN_ID,
  description: 'InfinStor MLflow browser: experiments, runs, run detail, comparison and models.',
  autoStart: true,
  optional: [ICommandPalette, INotebookTracker, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    const client = new MlflowClient({ serverSettings: app.serviceManager.serverSettings });
    const browser = new MlflowBrowserModel({ client });
    const tracker = new WidgetTracker<MainAreaWidget>({ namespace: 'infinstor-mlflow' });
    const { commands } = app;

    const activateSidebar = () => app.shell.activateById(SIDEBAR_ID);

    const actions: IMlflowActions = {
      openRun: runId => void commands.execute(MlflowCommandIDs.openRun, { runId }),
      compareRuns: runIds => void commands.execute(MlflowCommandIDs.compareRuns, { runIds }),
      openUi: (hash, label) => void commands.execute(MlflowCommandIDs.openInMlflowUi, { hash, label }),
      openNotebook: path => void commands.execute('docmanager:open', { path })
    };

    const findOpen = (id: string) => Array.from(app.shell.widgets('main')).find(w => w.id === id);

    commands.addCommand(MlflowCommandIDs.openRun, {
      label: args => (args['runId'] ? `Open run ${String(args['runId']).slice(0, 8)}` : 'Open MLflow run…'),
      caption: 'Open the detail of an MLflow run in a tab',
      execute: args => {
        const runId = String(args['runId'] ?? '');
        if (!runId) {
          return;
        }
        const id = `infinstor-run-${runId}`;
        const open = findOpen(id);
        if (open) {
          app.shell.activateById(id);
          return open;
        }
        const content = new RunDetailWidget({ client, runId, actions, rendermime });
        content.title.label = `Run ${runId.slice(0, 8)}`;
        const widget = wrap(content, id, content.title.label);
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(id);
        return widget;
      }
    });

    commands.addCommand(MlflowCommandIDs.compareRuns, {
      label: 'Compare MLflow runs',
      caption: 'Compare two or more runs side by side',
      isEnabled: args => Array.isArray(args['runIds']) && (args['runIds'] as string[]).length >= 2,
      execute: args => {
        const runIds = (args['runIds'] as string[]) ?? [];
        const content = new CompareWidget({ client, runIds, actions });
        content.title.label = `Compare ${runIds.length} runs`;
        const widget = wrap(content, `infinstor-compare-${runIds.join('-').slice(0, 200)}`, content.title.label);
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    commands.addCommand(MlflowCommandIDs.openInMlflowUi, {
      label: args => (args['hash'] ? 'Open in MLflow UI' : 'Open the current experiment or run in MLflow UI'),
      caption: "Open the same experiment, run or model in MLflow's own UI, in a lab tab",
      execute: args => {
        let hash = args['hash'] as string | undefined;
        let label = (args['label'] as string | undefined) ?? '';
        if (!hash) {
          const current = app.shell.currentWidget;
          const content = current instanceof MainAreaWidget ? current.content : null;
          if (content instanceof RunDetailWidget && content.model.run) {
            const run = content.model.run;
            hash = `#/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`;
            label = run.info.run_name || run.info.run_id.slice(0, 8);
          } else if (browser.experiment) {
            hash = `#/experiments/${browser.experiment.experiment_id}/runs`;
            label = browser.experiment.name;
          } else {
            hash = '#/experiments';
            label = 'experiments';
          }
        }
        const widget = createMlflowUiWidget(client.uiUrl(hash), label);
        widget.id = `infinstor-mlflow-ui-${Date.now()}`;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    const showTab = (tab: 'experiments' | 'notebook' | 'models') => () => {
      browser.tab = tab;
      activateSidebar();
    };
    commands.addCommand(MlflowCommandIDs.showExperiments, {
      label: 'Show MLflow experiments',
      execute: showTab('experiments')
    });
    commands.addCommand(MlflowCommandIDs.showNotebookRuns, {
      label: "Show this notebook's MLflow runs",
      execute: showTab('notebook')
    });
    commands.addCommand(MlflowCommandIDs.showModels, {
      label: 'Show MLflow registered models',
      execute: showTab('models')
    });
    commands.addCommand(MlflowCommandIDs.newExperiment, {
      label: 'New MLflow experiment…',
      execute: async () => {
        const id = await createExperimentDialog(browser.experiments);
        if (id) {
          showTab('experiments')();
        }
      }
    });
    commands.addCommand(MlflowCommandIDs.refresh, {
      label: 'Refresh MLflow experiments, runs and models',
      execute: async () => {
        await Promise.all([
          browser.experiments.refresh(),
          browser.runs?.reload(),
          browser.notebookRuns.refresh(),
          browser.registeredModels.refresh()
        ]);
      }
    });

    if (palette) {
      for (const command of [
        MlflowCommandIDs.showExperiments,
        MlflowCommandIDs.showNotebookRuns,
        MlflowCommandIDs.showModels,
        MlflowCommandIDs.newExperiment,
        MlflowCommandIDs.refresh,
        MlflowCommandIDs.openInMlflowUi
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    // "This notebook": follow the active notebook.
    if (notebooks) {
      const follow = () => {
        const path = notebooks.currentWidget?.context.path ?? null;
        void browser.notebookRuns.setPath(path);
      };
      notebooks.currentChanged.connect(follow);
      notebooks.widgetUpdated.connect(follow);
      follow();
    }

    // Mount in the InfinStor sidebar (added by the main plugin).
    const mount = () => {
      const sidebar = Array.from(app.shell.widgets('left')).find(w => w.id === SIDEBAR_ID) as InfinStorSidebar | undefined;
      if (sidebar && typeof sidebar.setBody === 'function') {
        sidebar.setBody(<MlflowBrowser model={browser} actions={actions} />);
        // Whether the service shares: asked (GET whoami) once per service, state and user.
        const status = sidebar.model;
        const check = () => {
          browser.sharing.update(sharingKey(status.status)).catch(reason => {
            console.error('InfinStor: could not check whether the tracking service supports sharing.', reason);
          });
        };
        status.changed.connect(check);
        check();
        return true;
      }
      return false;
    };
    if (!mount()) {
      void app.restored.then(() => {
        if (!mount()) {
          console.warn('InfinStor: the sidebar was not found; the MLflow browser is not shown.');
        }
      });
    }
  }
};
