import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { infinstorIcon } from '../common/icons';
import { FRONTEND_VERSION } from '../common/version';
import { SignInConfigSync } from '../signin/config';
import { SignInController } from '../signin/controller';
import { DEFAULT_POLL_INTERVAL, StatusModel } from '../status/model';
import {
  SERVER_EXTENSION_MISSING_NOTIFICATION,
  versionMismatch,
  versionMismatchNotification
} from '../status/status';
import { IInfinStorSidebar } from '../tokens';
import { InfinStorSidebar } from './sidebar';

/**
 * Plugin id; also the settings schema id (labextension/schema/plugin.json).
 */
export const PLUGIN_ID = 'infinstor-jupyterlab:plugin';

/**
 * Command ids.
 */
export namespace CommandIDs {
  export const openSidebar = 'infinstor:open-sidebar';
  export const refreshStatus = 'infinstor:refresh-status';
  export const signIn = 'infinstor:sign-in';
  export const signOut = 'infinstor:sign-out';
}

const PALETTE_CATEGORY = 'InfinStor';

export const sidebarPlugin: JupyterFrontEndPlugin<IInfinStorSidebar> = {
  id: PLUGIN_ID,
  description:
    'InfinStor MLflow sidebar: tracking service status and the signed-in user.',
  autoStart: true,
  provides: IInfinStorSidebar,
  optional: [ILayoutRestorer, ISettingRegistry, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ): IInfinStorSidebar => {
    const trans = (translator ?? nullTranslator).load('infinstor_jupyterlab');

    const model = new StatusModel({ interval: DEFAULT_POLL_INTERVAL });
    const signIn = new SignInController({ model });
    const sidebar = new InfinStorSidebar({
      model,
      signIn,
      translator: translator ?? nullTranslator
    });

    app.shell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    // Warn once per page load about configuration problems.
    let warnedMissing = false;
    let warnedMismatch = false;
    model.changed.connect(() => {
      if (model.serverExtensionMissing && !warnedMissing) {
        warnedMissing = true;
        Notification.warning(SERVER_EXTENSION_MISSING_NOTIFICATION, {
          autoClose: false,
          actions: [
            {
              label: trans.__('Open InfinStor sidebar'),
              callback: () => app.shell.activateById(sidebar.id)
            }
          ]
        });
      }
      const mismatch = model.status
        ? versionMismatch(FRONTEND_VERSION, model.status.version)
        : null;
      if (mismatch && !warnedMismatch) {
        warnedMismatch = true;
        Notification.warning(versionMismatchNotification(mismatch), {
          autoClose: false,
          actions: [
            {
              label: trans.__('Open InfinStor sidebar'),
              callback: () => app.shell.activateById(sidebar.id)
            }
          ]
        });
      }
    });

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: trans.__('Open InfinStor sidebar'),
      caption: trans.__('Show the InfinStor MLflow sidebar'),
      icon: args => (args['isPalette'] ? undefined : infinstorIcon),
      execute: () => {
        app.shell.activateById(sidebar.id);
      }
    });

    app.commands.addCommand(CommandIDs.refreshStatus, {
      label: trans.__('Refresh tracking service status'),
      caption: trans.__('Ask the InfinStor server extension for its status now'),
      execute: () => model.refresh()
    });

    app.commands.addCommand(CommandIDs.signIn, {
      label: trans.__('Sign in to the tracking service'),
      caption: trans.__('Sign in with your identity provider (opens a sign-in window)'),
      isEnabled: () => signIn.state.canSignIn,
      execute: () => {
        app.shell.activateById(sidebar.id);
        signIn.signIn();
      }
    });

    app.commands.addCommand(CommandIDs.signOut, {
      label: trans.__('Sign out of the tracking service'),
      caption: trans.__('Sign out and forget the stored credentials'),
      isEnabled: () => signIn.state.canSignOut && signIn.busy === null,
      execute: () => signIn.signOut()
    });

    const notifySignIn = () => {
      app.commands.notifyCommandChanged(CommandIDs.signIn);
      app.commands.notifyCommandChanged(CommandIDs.signOut);
    };
    model.changed.connect(notifySignIn);
    signIn.changed.connect(notifySignIn);

    if (palette) {
      palette.addItem({ command: CommandIDs.signIn, category: PALETTE_CATEGORY });
      palette.addItem({ command: CommandIDs.signOut, category: PALETTE_CATEGORY });
      palette.addItem({
        command: CommandIDs.openSidebar,
        category: PALETTE_CATEGORY,
        args: { isPalette: true }
      });
      palette.addItem({
        command: CommandIDs.refreshStatus,
        category: PALETTE_CATEGORY
      });
    }

    if (settingRegistry) {
      const signInConfig = new SignInConfigSync({ model });
      signInConfig.failed.connect((_, message) => {
        Notification.error(
          trans.__('The sign-in settings were not applied: %1', message),
          { autoClose: false }
        );
      });
      const applySettings = (settings: ISettingRegistry.ISettings) => {
        const seconds = settings.get('pollInterval').composite;
        if (typeof seconds === 'number' && Number.isFinite(seconds)) {
          model.interval = seconds * 1000;
        }
        const issuer = settings.get('oidcIssuer').composite;
        const clientId = settings.get('oidcClientId').composite;
        signInConfig.settings = {
          issuer: typeof issuer === 'string' ? issuer : '',
          clientId: typeof clientId === 'string' ? clientId : ''
        };
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          applySettings(settings);
          settings.changed.connect(applySettings);
        })
        .catch(reason => {
          console.error(
            `Failed to load settings for ${PLUGIN_ID}; polling every ${
              DEFAULT_POLL_INTERVAL / 1000
            } s.`,
            reason
          );
        });
    }

    return sidebar;
  }
};
