import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { JobCommandIDs } from '../jobs/plugin';
import { ComputeClient } from './client';
import { COMPUTE_PANEL_ID, ComputePanel } from './ComputePanel';
import { computeIcon } from './icons';
import { ComputeModel } from './model';

export const COMPUTE_PLUGIN_ID = 'infinstor-jupyterlab:compute';

export namespace ComputeCommandIDs {
  export const openCompute = 'infinstor:open-compute';
  export const refreshCompute = 'infinstor:refresh-compute';
}

const PALETTE_CATEGORY = 'InfinStor';

export const computePlugin: JupyterFrontEndPlugin<void> = {
  id: COMPUTE_PLUGIN_ID,
  description:
    'The Compute view: your EC2 instances (state, type, uptime, idle time, current job) with Stop / Terminate, and the EC2 settings.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('infinstor_jupyterlab');
    let panel: ComputePanel | null = null;
    const model = new ComputeModel({
      client: new ComputeClient(),
      // Ask AWS (through the server) only while someone looks.
      standby: () => !panel?.isVisible || 'when-hidden'
    });
    panel = new ComputePanel({
      model,
      translator: translator ?? nullTranslator,
      actions: {
        showJob: id => app.commands.execute(JobCommandIDs.showJob, { id })
      }
    });
    panel.title.label = trans.__('Compute');
    // After the InfinStor sidebar (600) and the Jobs view (601).
    app.shell.add(panel, 'left', { rank: 602 });
    if (restorer) {
      restorer.add(panel, COMPUTE_PANEL_ID);
    }

    app.commands.addCommand(ComputeCommandIDs.openCompute, {
      label: trans.__('Show InfinStor compute (EC2 instances)'),
      caption: trans.__('Show your EC2 instances and the EC2 settings'),
      icon: args => (args['isPalette'] ? undefined : computeIcon),
      execute: () => {
        app.shell.activateById(panel!.id);
      }
    });

    app.commands.addCommand(ComputeCommandIDs.refreshCompute, {
      label: trans.__('Refresh InfinStor compute'),
      execute: () => model.refresh()
    });

    if (palette) {
      palette.addItem({
        command: ComputeCommandIDs.openCompute,
        category: PALETTE_CATEGORY,
        args: { isPalette: true }
      });
      palette.addItem({ command: ComputeCommandIDs.refreshCompute, category: PALETTE_CATEGORY });
    }
  }
};
