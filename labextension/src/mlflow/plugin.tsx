import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import React from 'react';

import { infinstorIcon } from '../common/icons';
import { IInfinStorSidebar, IMlflowClient } from '../tokens';
import { MlflowClient } from './client';
import { mlflowUiIcon } from './icons';
import { IMlflowActions } from './views/common';
import { createExperimentDialog } from './views/experiments';
import { MlflowBrowser, MlflowBrowserModel } from './views/browser';
import { CompareWidget, createMlflowUiWidget, RunDetailWidget, wrap } from './widgets';
import { sharingKey } from './sharing';

export const MLFLOW_PLUGIN_ID = 'infinstor-jupyterlab:mlflow';

/** The settings the MLflow views read (those of the sidebar's plugin, labextension/schema/plugin.json). */
const SETTINGS_ID = 'infinstor-jupyterlab:plugin';

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
 * Experiments, runs, run detail, comparison, this notebook's runs and registered models, in
 * the InfinStor sidebar and main-area tabs; and the typed MLflow client for the other plugins.
 */
export const mlflowPlugin: JupyterFrontEndPlugin<IMlflowClient> = {
  id: MLFLOW_PLUGIN_ID,
  description: 'InfinStor MLflow browser: experiments, runs, run detail, comparison and models.',
  autoStart: true,
  provides: IMlflowClient,
  optional: [
    IInfinStorSidebar,
    ICommandPalette,
    INotebookTracker,
    IRenderMimeRegistry,
    ISettingRegistry,
    ILauncher,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IInfinStorSidebar | null,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    rendermime: IRenderMimeRegistry | null,
    settingRegistry: ISettingRegistry | null,
    launcher: ILauncher | null,
    translator: ITranslator | null
  ): IMlflowClient => {
    translator = translator ?? nullTranslator;
    const trans = translator.load('infinstor_jupyterlab');
    const client = new MlflowClient({ serverSettings: app.serviceManager.serverSettings });
    const browser = new MlflowBrowserModel({ client, sidebarVisible: sidebar?.isVisible ?? false });
    const tracker = new WidgetTracker<MainAreaWidget>({ namespace: 'infinstor-mlflow' });
    const { commands } = app;

    const activateSidebar = () => {
      if (sidebar) {
        app.shell.activateById(sidebar.id);
      }
    };

    const actions: IMlflowActions = {
      openRun: runId => void commands.execute(MlflowCommandIDs.openRun, { runId }),
      compareRuns: runIds => void commands.execute(MlflowCommandIDs.compareRuns, { runIds }),
      openUi: (hash, label) => void commands.execute(MlflowCommandIDs.openInMlflowUi, { hash, label }),
      openNotebook: path => void commands.execute('docmanager:open', { path })
    };

    const findOpen = (id: string) => Array.from(app.shell.widgets('main')).find(w => w.id === id);

    commands.addCommand(MlflowCommandIDs.openRun, {
      label: args =>
        args['runId']
          ? trans.__('Open run %1', String(args['runId']).slice(0, 8))
          : trans.__('Open MLflow run…'),
      caption: trans.__('Open the detail of an MLflow run in a tab'),
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
        content.title.label = trans.__('Run %1', runId.slice(0, 8));
        const widget = wrap(content, id, content.title.label);
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(id);
        return widget;
      }
    });

    commands.addCommand(MlflowCommandIDs.compareRuns, {
      label: trans.__('Compare MLflow runs'),
      caption: trans.__('Compare two or more runs side by side'),
      isEnabled: args => Array.isArray(args['runIds']) && (args['runIds'] as string[]).length >= 2,
      execute: args => {
        const runIds = (args['runIds'] as string[]) ?? [];
        const content = new CompareWidget({ client, runIds, actions });
        content.title.label = trans.__('Compare %1 runs', runIds.length);
        const widget = wrap(content, `infinstor-compare-${runIds.join('-').slice(0, 200)}`, content.title.label);
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    commands.addCommand(MlflowCommandIDs.openInMlflowUi, {
      label: args =>
        args['launcher']
          ? trans.__('MLflow UI')
          : args['hash']
            ? trans.__('Open in MLflow UI')
            : trans.__('Open the current experiment or run in MLflow UI'),
      caption: trans.__("Open the same experiment, run or model in MLflow's own UI, in a lab tab"),
      icon: args => (args['isPalette'] ? undefined : mlflowUiIcon),
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
            label = trans.__('experiments');
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
      label: args => (args['launcher'] ? trans.__('MLflow experiments') : trans.__('Show MLflow experiments')),
      caption: trans.__('Show your MLflow experiments, runs and models in the InfinStor sidebar'),
      icon: args => (args['isPalette'] ? undefined : infinstorIcon),
      execute: showTab('experiments')
    });
    commands.addCommand(MlflowCommandIDs.showNotebookRuns, {
      label: trans.__("Show this notebook's MLflow runs"),
      execute: showTab('notebook')
    });
    commands.addCommand(MlflowCommandIDs.showModels, {
      label: trans.__('Show MLflow registered models'),
      execute: showTab('models')
    });
    commands.addCommand(MlflowCommandIDs.newExperiment, {
      label: trans.__('New MLflow experiment…'),
      execute: async () => {
        const id = await createExperimentDialog(browser.experiments, trans);
        if (id) {
          showTab('experiments')();
        }
      }
    });
    commands.addCommand(MlflowCommandIDs.refresh, {
      label: trans.__('Refresh MLflow experiments, runs and models'),
      execute: () => browser.refresh()
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
        palette.addItem({ command, category: CATEGORY, args: { isPalette: true } });
      }
    }

    if (launcher) {
      launcher.add({ command: MlflowCommandIDs.showExperiments, category: CATEGORY, rank: 1, args: { launcher: true } });
      launcher.add({ command: MlflowCommandIDs.openInMlflowUi, category: CATEGORY, rank: 2, args: { launcher: true } });
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

    // How long the lists wait between checks while nothing changes (the refreshInterval setting).
    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        const seconds = settings.get('refreshInterval').composite;
        if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0) {
          browser.idleInterval = seconds * 1000;
        }
      };
      settingRegistry
        .load(SETTINGS_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => console.error('InfinStor: could not read the MLflow views settings.', reason));
    }

    // In the InfinStor sidebar, below the status and the user.
    if (sidebar) {
      sidebar.addSection(browser, <MlflowBrowser model={browser} actions={actions} translator={translator} />);
      sidebar.visibilityChanged.connect((_, visible) => {
        browser.sidebarVisible = visible;
      });
      browser.sidebarVisible = sidebar.isVisible;

      const status = sidebar.status;
      // Whether the service shares: asked (GET whoami) once per service, state and user.
      // When who is signed in changes, what the lists showed is stale: reload them.
      let lastUser: string | null = null;
      const onStatus = () => {
        browser.sharing.update(sharingKey(status.status)).catch(reason => {
          console.error('InfinStor: could not check whether the tracking service supports sharing.', reason);
        });
        const user = status.status?.user;
        if (!user) {
          return;
        }
        const key = user.signed_in ? `signed-in:${user.name}` : 'signed-out';
        if (lastUser !== null && key !== lastUser) {
          void browser.refresh();
        }
        lastUser = key;
      };
      status.changed.connect(onStatus);
      onStatus();
    }

    return client;
  }
};
