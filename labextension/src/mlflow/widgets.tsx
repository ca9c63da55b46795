import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { infinstorIcon } from '../common/icons';
import { IMlflowClient } from '../tokens';
import { CompareModel, RunDetailModel } from './models';
import { IMlflowActions } from './views/common';
import { CompareRuns } from './views/compare';
import { RunDetail } from './views/runDetail';

/**
 * A run's detail as a main-area tab.
 */
export class RunDetailWidget extends ReactWidget {
  constructor(options: { client: IMlflowClient; runId: string; actions: IMlflowActions; rendermime: IRenderMimeRegistry | null }) {
    super();
    this.model = new RunDetailModel({ client: options.client, runId: options.runId });
    this._actions = options.actions;
    this._rendermime = options.rendermime;
    this.addClass('jp-InfinStor-main');
    this.model.changed.connect(() => {
      const run = this.model.run;
      if (run) {
        this.title.label = `Run ${run.info.run_name || run.info.run_id.slice(0, 8)}`;
      }
    });
    void this.model.refresh();
  }
  readonly model: RunDetailModel;
  protected onAfterShow(): void {
    this.model.visible = true;
  }
  protected onAfterHide(): void {
    this.model.visible = false;
  }
  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
  protected render(): JSX.Element {
    return <RunDetail model={this.model} actions={this._actions} rendermime={this._rendermime} />;
  }
  private _actions: IMlflowActions;
  private _rendermime: IRenderMimeRegistry | null;
}

export class CompareWidget extends ReactWidget {
  constructor(options: { client: IMlflowClient; runIds: string[]; actions: IMlflowActions }) {
    super();
    this.model = new CompareModel({ client: options.client, runIds: options.runIds });
    this._actions = options.actions;
    this.addClass('jp-InfinStor-main');
    void this.model.refresh();
  }
  readonly model: CompareModel;
  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
  protected render(): JSX.Element {
    return <CompareRuns model={this.model} actions={this._actions} />;
  }
  private _actions: IMlflowActions;
}

/**
 * MLflow's own UI (through the proxy) in a lab tab.
 */
export function createMlflowUiWidget(url: string, label: string): MainAreaWidget<IFrame> {
  // MLflow's UI runs its own scripts and calls its API on this origin.
  const frame = new IFrame({ sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups', 'allow-downloads'] });
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

export { React };
