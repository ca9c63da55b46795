import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';

import { infinstorIcon } from '../common/icons';
import { withoutAssistant } from './mlflowUi';

/**
 * MLflow's own UI (through the proxy) in a lab tab.
 */
export function createMlflowUiWidget(url: string, label: string): MainAreaWidget<IFrame> {
  // MLflow's UI runs its own scripts and calls its API on this origin.
  const frame = new IFrame({ sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups', 'allow-downloads'] });
  withoutAssistant(frame.node.querySelector('iframe')!, window.localStorage);
  frame.url = url;
  frame.addClass('jp-InfinStor-mlflowUi');
  const widget = new MainAreaWidget({ content: frame });
  widget.title.label = `MLflow: ${label}`;
  widget.title.icon = infinstorIcon;
  widget.title.closable = true;
  return widget;
}

export function wrap(content: ReactWidget, id: string, label: string): MainAreaWidget<ReactWidget> {
  const widget = new MainAreaWidget({ content });
  widget.id = id;
  widget.title.label = label;
  widget.title.icon = infinstorIcon;
  widget.title.closable = true;
  return widget;
}

