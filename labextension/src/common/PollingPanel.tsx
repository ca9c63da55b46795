import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Button, LabIcon, ReactWidget, refreshIcon, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { PollingModel } from './pollingModel';

/**
 * Ask before a destructive action; resolves true to go on.
 */
export type Confirm = (title: string, body: string, action: string) => Promise<boolean>;

export const confirmWithDialog: Confirm = async (title, body, action) => {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton({ label: 'Keep' }), Dialog.warnButton({ label: action })]
  });
  return result.button.accept;
};

/** Re-render every second while `active` (for ticking durations and uptimes). */
export function useTicker(active: boolean): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!active) {
      return;
    }
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return active ? now : Date.now();
}

/**
 * Props of {@link PollingListView}.
 */
export interface IPollingListViewProps {
  model: PollingModel<unknown>;
  /** Class of the view's root element. */
  className: string;
  icon: LabIcon;
  title: string;
  /** Title and accessible name of the refresh button. */
  refreshLabel: string;
  /** Prefix of the header's and the error banner's test ids (`-refresh`, `-error`). */
  testIdPrefix: string;
  /** The banner text for a failed request. */
  describeError: (error: Error) => string;
  /** Shown until the first request completes. */
  loadingText: string;
  /** Banners under the request error (e.g. a failed action's). */
  notices?: React.ReactNode;
  /** What replaces the loading status once data came: the list or its empty state. */
  body: React.ReactNode;
  /** Sections after the list (details, settings). */
  children?: React.ReactNode;
}

/**
 * The shell of a polled list view: a header with a refresh button, the last request's
 * error, and a loading status until the first answer, then the list.
 */
export function PollingListView(props: IPollingListViewProps): JSX.Element {
  const { model } = props;
  return (
    <div className={`jp-InfinStor-pollingList ${props.className}`}>
      <header className="jp-InfinStor-header">
        <props.icon.react tag="span" className="jp-InfinStor-headerIcon" width="20px" height="20px" />
        <h2 className="jp-InfinStor-title">{props.title}</h2>
        <Button
          minimal
          small
          className="jp-InfinStor-refresh"
          title={props.refreshLabel}
          aria-label={props.refreshLabel}
          data-testid={`${props.testIdPrefix}-refresh`}
          onClick={() => void model.refresh()}
        >
          <refreshIcon.react tag="span" className="jp-InfinStor-refreshIcon" />
        </Button>
      </header>

      {model.error && (
        <div
          className="jp-InfinStor-banner jp-InfinStor-banner-error"
          role="alert"
          data-testid={`${props.testIdPrefix}-error`}
        >
          {props.describeError(model.error)}
        </div>
      )}
      {props.notices}

      {model.loading ? (
        <div className="jp-InfinStor-loading" role="status">
          <span className="jp-InfinStor-spinner" aria-hidden="true" />
          {props.loadingText}
        </div>
      ) : (
        props.body
      )}

      {props.children}
    </div>
  );
}

/**
 * A side-panel widget showing a polled model: an accessible region that renders its view
 * again whenever the model changes.
 */
export abstract class PollingPanel<TModel extends PollingModel<unknown>> extends ReactWidget {
  constructor(options: PollingPanel.IOptions<TModel>) {
    super();
    this._model = options.model;
    this.confirm = options.confirm ?? confirmWithDialog;
    this.trans = translationBundle(options.translator);
    this.id = options.id;
    this.addClass('jp-InfinStor-pollingPanel');
    this.addClass(options.className);
    this.title.icon = options.icon;
    this.title.caption = options.caption;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', options.label);
  }

  get model(): TModel {
    return this._model;
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed} initialSender={this._model}>
        {() => this.renderView()}
      </UseSignal>
    );
  }

  /** The view of the model as it is now. */
  protected abstract renderView(): JSX.Element;

  protected readonly confirm: Confirm;
  protected readonly trans: TranslationBundle;
  private _model: TModel;
}

export namespace PollingPanel {
  /** What every polled panel's creator may pass. */
  export interface ICommonOptions<TModel> {
    model: TModel;
    confirm?: Confirm;
    translator?: ITranslator;
    id?: string;
  }

  export interface IOptions<TModel> extends ICommonOptions<TModel> {
    id: string;
    /** Class of the widget's node. */
    className: string;
    icon: LabIcon;
    /** The tab's tooltip, translated. */
    caption: string;
    /** The region's accessible name, translated. */
    label: string;
  }
}

/** The extension's translations. */
export function translationBundle(translator?: ITranslator): TranslationBundle {
  return (translator ?? nullTranslator).load('infinstor_jupyterlab');
}
