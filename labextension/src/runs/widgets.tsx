/**
 * The main-area widgets of the runs views: an experiment's runs, a run's page, a comparison.
 * Each polls only while it is visible.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { IMlflowClient } from '../tokens';
import { runName } from '../mlflow/format';
import { IMlflowActions, TranslationContext } from '../mlflow/views/common';
import { CompareRuns } from './Compare';
import { CompareModel } from './compareModel';
import { ExperimentRunsModel } from './model';
import { RunsModelRegistry } from './registry';
import { RunPage } from './RunPage';
import { RunPageModel } from './runPageModel';
import { RunsTab } from './RunsTab';

/**
 * An experiment's runs, full width.
 */
export class RunsWidget extends ReactWidget {
  constructor(options: {
    registry: RunsModelRegistry;
    experimentId: string;
    experimentName?: string;
    actions: IMlflowActions;
    trans: TranslationBundle;
  }) {
    super();
    this._registry = options.registry;
    this.experimentId = options.experimentId;
    this.model = options.registry.acquire(options.experimentId);
    this._actions = options.actions;
    this._trans = options.trans;
    this.addClass('jp-InfinStor-main');
    this.experimentName = options.experimentName || options.experimentId;
    if (!options.experimentName) {
      // Opened by id (palette, restored layout): ask for the name.
      options.registry.client
        .getExperiment(options.experimentId)
        .then(e => {
          this.experimentName = e.name;
        })
        .catch(() => undefined);
    }
  }

  readonly experimentId: string;
  readonly model: ExperimentRunsModel;

  get experimentName(): string {
    return this._name;
  }
  set experimentName(name: string) {
    this._name = name;
    this.title.label = this._trans.__('Runs: %1', name);
    this.title.caption = this._trans.__('MLflow runs of %1', name);
    this.update();
  }

  /** The runs ticked for comparison. */
  get selection(): string[] {
    return this._selection;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.setVisible(this, false);
    this._registry.release(this.experimentId);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.setVisible(this, true);
  }
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.model.setVisible(this, this.isVisible);
  }
  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(this, false);
  }
  protected onBeforeDetach(msg: Message): void {
    this.model.setVisible(this, false);
    super.onBeforeDetach(msg);
  }

  protected render(): JSX.Element {
    return (
      <TranslationContext.Provider value={this._trans}>
        <RunsTab
          model={this.model}
          store={this._registry.store}
          experimentName={this._name}
          actions={this._actions}
          onSelection={ids => (this._selection = ids)}
        />
      </TranslationContext.Provider>
    );
  }

  private _registry: RunsModelRegistry;
  private _actions: IMlflowActions;
  private _trans: TranslationBundle;
  private _name = '';
  private _selection: string[] = [];
}

/**
 * A run's page.
 */
export class RunPageWidget extends ReactWidget {
  constructor(options: {
    client: IMlflowClient;
    runId: string;
    actions: IMlflowActions;
    rendermime: IRenderMimeRegistry | null;
    trans: TranslationBundle;
  }) {
    super();
    // Asks the server only while on screen (a tab restored behind others waits until shown).
    this.model = new RunPageModel({ client: options.client, runId: options.runId, visible: false });
    this._actions = options.actions;
    this._rendermime = options.rendermime;
    this._trans = options.trans;
    this.addClass('jp-InfinStor-main');
    this.title.label = this._trans.__('Run %1', options.runId.slice(0, 8));
    this.model.changed.connect(() => {
      const run = this.model.run;
      if (run) {
        this.title.label = this._trans.__('Run %1', runName(run));
        this.title.caption = this._trans.__('MLflow run %1', run.info.run_id);
      }
    });
    void this.model.reload();
  }

  readonly model: RunPageModel;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.visible = true;
  }
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.model.visible = this.isVisible;
  }
  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.visible = false;
  }
  protected onBeforeDetach(msg: Message): void {
    this.model.visible = false;
    super.onBeforeDetach(msg);
  }
  protected render(): JSX.Element {
    return (
      <TranslationContext.Provider value={this._trans}>
        <RunPage model={this.model} actions={this._actions} rendermime={this._rendermime} />
      </TranslationContext.Provider>
    );
  }

  private _actions: IMlflowActions;
  private _rendermime: IRenderMimeRegistry | null;
  private _trans: TranslationBundle;
}

/**
 * Runs compared.
 */
export class CompareWidget extends ReactWidget {
  constructor(options: { client: IMlflowClient; runIds: string[]; actions: IMlflowActions; trans: TranslationBundle }) {
    super();
    this.model = new CompareModel({ client: options.client, runIds: options.runIds, visible: false });
    this._actions = options.actions;
    this._trans = options.trans;
    this.addClass('jp-InfinStor-main');
    this.title.label = this._trans.__('Compare %1 runs', this.model.runIds.length);
    void this.model.reload();
  }
  readonly model: CompareModel;
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.visible = true;
  }
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.model.visible = this.isVisible;
  }
  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.visible = false;
  }
  protected onBeforeDetach(msg: Message): void {
    this.model.visible = false;
    super.onBeforeDetach(msg);
  }
  protected render(): JSX.Element {
    return (
      <TranslationContext.Provider value={this._trans}>
        <CompareRuns model={this.model} actions={this._actions} />
      </TranslationContext.Provider>
    );
  }
  private _actions: IMlflowActions;
  private _trans: TranslationBundle;
}
