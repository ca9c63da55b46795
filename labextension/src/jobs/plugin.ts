import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { IFrame } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { IMlflowClient, IMlflowViews } from '../tokens';
import { JobsClient } from './client';
import { JobDialog } from './dialog/JobDialog';
import { formatDuration, jobTitle } from './format';
import { jobsIcon } from './icons';
import { JobsModel } from './model';
import { JOBS_PANEL_ID, JobsPanel } from './JobsPanel';
import { IJob } from './types';

/** Plugin id; also the settings schema id (labextension/schema/jobs.json). */
export const JOBS_PLUGIN_ID = 'infinstor-jupyterlab:jobs';

export namespace JobCommandIDs {
  export const runJob = 'infinstor:run-job';
  export const openJobs = 'infinstor:open-jobs';
  export const showJob = 'infinstor:show-job';
}

const PALETTE_CATEGORY = 'InfinStor';

/** The MLflow UI's deep link to a run, through the lab's MLflow proxy. */
export function runUrl(baseUrl: string, experimentId: string, runId: string): string {
  return (
    URLExt.join(baseUrl, 'infinstor', 'api', 'mlflow') +
    `/#/experiments/${encodeURIComponent(experimentId)}/runs/${encodeURIComponent(runId)}`
  );
}

/**
 * Remembers which folders hold an `MLproject`, so the (synchronous) context
 * menu can show "Run as MLflow job…" on them. Folders of the listing are
 * probed when the file browser shows them.
 */
class MLprojectFolders {
  constructor(private contents: Contents.IManager) {}

  has(item: Contents.IModel): boolean {
    return this._known.get(this._key(item)) === true;
  }

  probe(items: Iterable<Contents.IModel>, limit = 50): void {
    let count = 0;
    for (const item of items) {
      if (item.type !== 'directory') {
        continue;
      }
      const key = this._key(item);
      if (this._known.has(key)) {
        continue;
      }
      if (++count > limit) {
        break;
      }
      this._known.set(key, false);
      this.contents
        .get(item.path ? `${item.path}/MLproject` : 'MLproject', { content: false })
        .then(model => this._known.set(key, model.type === 'file'))
        .catch(() => this._known.set(key, false));
    }
  }

  private _key(item: Contents.IModel): string {
    return `${item.path}@${item.last_modified}`;
  }

  private _known = new Map<string, boolean>();
}

export const jobsPlugin: JupyterFrontEndPlugin<void> = {
  id: JOBS_PLUGIN_ID,
  description:
    'Run notebooks and MLflow projects as MLflow jobs: the job dialog, the Jobs view and job notifications.',
  autoStart: true,
  // The dialog's experiments come through the MLflow client; the MLflow views (optional) open
  // a job's run and give the experiment open in the sidebar.
  requires: [IMlflowClient],
  optional: [
    ILayoutRestorer,
    IDefaultFileBrowser,
    INotebookTracker,
    ICommandPalette,
    ITranslator,
    IMlflowViews
  ],
  activate: (
    app: JupyterFrontEnd,
    mlflow: IMlflowClient,
    restorer: ILayoutRestorer | null,
    browser: IDefaultFileBrowser | null,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null,
    views: IMlflowViews | null
  ) => {
    const trans = (translator ?? nullTranslator).load('infinstor_jupyterlab');
    const client = new JobsClient();
    const model = new JobsModel({ client });
    const folders = new MLprojectFolders(app.serviceManager.contents);

    const openJobDialog = async (path: string, prefill?: IJob) => {
      const dialog = new JobDialog({
        path,
        client,
        mlflow,
        opened: views?.openedExperiment ?? null,
        submit: request => model.submit(request),
        prefill,
        trans
      });
      const result = await dialog.launch();
      if (result.button.accept && result.value) {
        showJob(result.value.id);
      }
    };

    const openRun = async (job: IJob) => {
      // The MLflow views' run page (that plugin may be disabled: then MLflow's own UI).
      if (views) {
        await views.openRun(job.run_id);
        return;
      }
      const id = `infinstor-run-${job.run_id}`;
      const existing = Array.from(app.shell.widgets('main')).find(w => w.id === id);
      if (existing) {
        app.shell.activateById(id);
        return;
      }
      const frame = new IFrame({
        sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups', 'allow-downloads']
      });
      frame.url = runUrl(PageConfig.getBaseUrl(), job.experiment_id, job.run_id);
      const widget = new MainAreaWidget({ content: frame });
      widget.id = id;
      widget.title.label = trans.__('Run %1', jobTitle(job));
      widget.title.caption = trans.__('MLflow run %1', job.run_id);
      widget.title.icon = jobsIcon;
      widget.title.closable = true;
      app.shell.add(widget, 'main');
      app.shell.activateById(id);
    };

    const panel = new JobsPanel({
      model,
      translator: translator ?? nullTranslator,
      actions: {
        openRun,
        rerun: job => openJobDialog(job.path, job)
      }
    });
    panel.title.label = trans.__('Jobs');
    // Right after the InfinStor sidebar (rank 600).
    app.shell.add(panel, 'left', { rank: 601 });
    if (restorer) {
      restorer.add(panel, JOBS_PANEL_ID);
    }

    const showJob = (id?: string) => {
      app.shell.activateById(panel.id);
      if (id) {
        panel.selectJob(id);
      }
    };
    // A run page's "Job …" link shows the job and its log here.
    views?.setJobOpener(id => showJob(id));

    // Notify when a job the lab saw queued or running (including CLI jobs) ends.
    model.jobEnded.connect((_, { job }) => {
      // Its runs are final now: the MLflow views check at once.
      mlflow.notifyChanged('job');
      const title = jobTitle(job);
      const actions = [
        {
          label: trans.__('Show log'),
          caption: trans.__('Show the job and its log in the Jobs view'),
          callback: () => showJob(job.id)
        }
      ];
      if (job.status === 'FINISHED') {
        Notification.success(
          trans.__('Job “%1” finished in %2.', title, formatDuration(job.duration)),
          { autoClose: 10000, actions }
        );
      } else if (job.status === 'FAILED') {
        Notification.error(
          trans.__('Job “%1” failed: %2', title, job.failure_reason || trans.__('see its log')),
          { autoClose: false, actions }
        );
      } else {
        Notification.info(trans.__('Job “%1” was cancelled.', title), {
          autoClose: 5000,
          actions
        });
      }
    });

    // The item the file browser's context menu was opened on.
    const selectedItem = (): Contents.IModel | null => {
      if (!browser) {
        return null;
      }
      const items = Array.from(browser.selectedItems());
      return items.length === 1 ? items[0] : null;
    };
    const runnable = (item: Contents.IModel | null): boolean =>
      !!item && (item.type === 'notebook' || (item.type === 'directory' && folders.has(item)));

    if (browser) {
      const probe = () => folders.probe(browser.model.items());
      browser.model.refreshed.connect(probe);
      probe();
    }

    const resolvePath = (args: ReadonlyPartialJSONObject): string | null => {
      if (typeof args['path'] === 'string' && args['path']) {
        return args['path'] as string;
      }
      if (args['fileBrowser']) {
        const item = selectedItem();
        return runnable(item) ? item!.path : null;
      }
      return notebooks?.currentWidget?.context.path ?? null;
    };

    app.commands.addCommand(JobCommandIDs.runJob, {
      label: trans.__('Run as MLflow job…'),
      caption: trans.__('Run the notebook or MLflow project as a tracked MLflow job'),
      icon: args => (args['isPalette'] ? undefined : jobsIcon),
      isEnabled: args => resolvePath(args) !== null,
      isVisible: args => (args['fileBrowser'] ? runnable(selectedItem()) : true),
      execute: async args => {
        const path = resolvePath(args);
        if (!path) {
          Notification.warning(
            trans.__('Open a notebook, or right-click one in the file browser, to run it as an MLflow job.')
          );
          return;
        }
        await openJobDialog(path);
      }
    });

    app.commands.addCommand(JobCommandIDs.openJobs, {
      label: trans.__('Show InfinStor jobs'),
      caption: trans.__('Show the MLflow jobs view'),
      icon: args => (args['isPalette'] ? undefined : jobsIcon),
      execute: () => showJob()
    });

    app.commands.addCommand(JobCommandIDs.showJob, {
      label: trans.__('Show InfinStor job'),
      execute: args => showJob(typeof args['id'] === 'string' ? (args['id'] as string) : undefined)
    });

    if (palette) {
      palette.addItem({
        command: JobCommandIDs.runJob,
        category: PALETTE_CATEGORY,
        args: { isPalette: true }
      });
      palette.addItem({
        command: JobCommandIDs.openJobs,
        category: PALETTE_CATEGORY,
        args: { isPalette: true }
      });
    }

    // Refresh the toolbar/menu state when the current notebook changes.
    notebooks?.currentChanged.connect(() => app.commands.notifyCommandChanged(JobCommandIDs.runJob));
  }
};
