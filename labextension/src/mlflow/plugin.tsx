import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { DisposableDelegate } from '@lumino/disposable';
import React from 'react';

import { infinstorIcon } from '../common/icons';
import { RunsCommandIDs, setUpRunsViews } from '../runs/plugin';
import { RunPageWidget } from '../runs/widgets';
import { IInfinStorSidebar, IMlflowClient, IMlflowViews } from '../tokens';
import { MlflowBrowserModel } from './browserModel';
import { MlflowClient } from './client';
import { mlflowUiIcon } from './icons';
import { sharingKey } from './sharing';
import { IMlflowActions } from './views/common';
import { createExperimentDialog } from './views/experiments';
import { MlflowBrowser } from './views/browser';
import { createMlflowUiWidget } from './widgets';

export const MLFLOW_PLUGIN_ID = 'infinstor-jupyterlab:mlflow';
export const MLFLOW_CLIENT_PLUGIN_ID = 'infinstor-jupyterlab:mlflow-client';

/** The settings the MLflow views read (those of the sidebar's plugin, labextension/schema/plugin.json). */
const SETTINGS_ID = 'infinstor-jupyterlab:plugin';

export namespace MlflowCommandIDs {
  export const openRuns = RunsCommandIDs.openRuns;
  export const openRun = RunsCommandIDs.openRun;
  export const compareRuns = RunsCommandIDs.compareRuns;
  export const openInMlflowUi = 'infinstor:mlflow-open-in-ui';
  export const showExperiments = 'infinstor:mlflow-show-experiments';
  export const showNotebookRuns = 'infinstor:mlflow-show-notebook-runs';
  export const showModels = 'infinstor:mlflow-show-models';
  export const newExperiment = 'infinstor:mlflow-new-experiment';
  export const refresh = 'infinstor:mlflow-refresh';
}

const CATEGORY = 'InfinStor';

/**
 * The typed MLflow client (through the lab's authenticated proxy), for every plugin that talks
 * to MLflow: a plugin of its own, so the job dialog works with the MLflow views disabled.
 */
export const mlflowClientPlugin: JupyterFrontEndPlugin<IMlflowClient> = {
  id: MLFLOW_CLIENT_PLUGIN_ID,
  description: "The typed MLflow REST client through the lab's authenticated proxy.",
  autoStart: true,
  provides: IMlflowClient,
  activate: (app: JupyterFrontEnd): IMlflowClient =>
    new MlflowClient({ serverSettings: app.serviceManager.serverSettings })
};

/**
 * Experiments, the runs of an experiment (a compact list in the sidebar, the full table in a
 * tab), run pages, comparisons, this notebook's runs and registered models.
 */
export const mlflowPlugin: JupyterFrontEndPlugin<IMlflowViews> = {
  id: MLFLOW_PLUGIN_ID,
  description: 'InfinStor MLflow browser: experiments, runs, run pages, comparison and models.',
  autoStart: true,
  requires: [IMlflowClient],
  provides: IMlflowViews,
  optional: [
    IInfinStorSidebar,
    ICommandPalette,
    INotebookTracker,
    IRenderMimeRegistry,
    ISettingRegistry,
    ILauncher,
    ILayoutRestorer,
    IStateDB,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    client: IMlflowClient,
    sidebar: IInfinStorSidebar | null,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    rendermime: IRenderMimeRegistry | null,
    settingRegistry: ISettingRegistry | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null,
    state: IStateDB | null,
    translator: ITranslator | null
  ): IMlflowViews => {
    translator = translator ?? nullTranslator;
    const trans = translator.load('infinstor_jupyterlab');
    const { commands } = app;

    const activateSidebar = () => {
      if (sidebar) {
        app.shell.activateById(sidebar.id);
      }
    };

    // The Jobs view's link from a run page, once the jobs plugin gives it.
    let jobOpener: ((jobId: string) => void) | null = null;

    const actions: IMlflowActions = {
      openRun: runId => void commands.execute(MlflowCommandIDs.openRun, { runId }),
      compareRuns: runIds => void commands.execute(MlflowCommandIDs.compareRuns, { runIds }),
      openUi: (hash, label) => void commands.execute(MlflowCommandIDs.openInMlflowUi, { hash, label }),
      openNotebook: path => void commands.execute('docmanager:open', { path }),
      openRuns: (experimentId, name) => void commands.execute(MlflowCommandIDs.openRuns, { experimentId, name: name ?? '' }),
      get openJob() {
        return jobOpener;
      }
    };

    // Runs tab, run page, compare: commands, tabs, the runs models the sidebar shares.
    const runsViews = setUpRunsViews({
      app,
      client,
      actions,
      trans,
      state,
      restorer,
      palette,
      rendermime,
      category: CATEGORY
    });
    const browser = new MlflowBrowserModel({
      client,
      runs: runsViews,
      sidebarVisible: sidebar?.isVisible ?? false
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
          if (content instanceof RunPageWidget && content.model.run) {
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
        const widget = createMlflowUiWidget(client.uiUrl(hash), trans.__('MLflow: %1', label));
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

    return {
      get openedExperiment() {
        return browser.experiment;
      },
      openRun: async runId => {
        await commands.execute(MlflowCommandIDs.openRun, { runId });
      },
      setJobOpener: open => {
        jobOpener = open;
        return new DisposableDelegate(() => {
          if (jobOpener === open) {
            jobOpener = null;
          }
        });
      }
    };
  }
};
