import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import {
  Button,
  ReactWidget,
  refreshIcon,
  UseSignal
} from '@jupyterlab/ui-components';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { InfinStorRequestError, requestAPI } from '../common/request';
import { infinstorIcon } from '../common/icons';
import { StatusModel } from '../status/model';
import {
  formatTime,
  IStatus,
  ITrackingStatus,
  modeLabel,
  parseStatus,
  SERVER_EXTENSION_MISSING_MESSAGE,
  shouldShowMessage,
  stateKind,
  stateLabel,
  versionMismatch,
  versionMismatchMessage
} from '../status/status';
import { FRONTEND_VERSION } from '../common/version';
import { SignInController } from '../signin/controller';
import { UserSection } from '../signin/UserSection';
import { IInfinStorSidebar, ISidebarSection } from '../tokens';

/**
 * Id of the sidebar widget.
 */
export const SIDEBAR_ID = 'infinstor-sidebar';

/**
 * Restart the embedded tracking service.
 */
export async function restartTracking(): Promise<ITrackingStatus> {
  const data = await requestAPI<
    ITrackingStatus | { tracking: ITrackingStatus }
  >('tracking/restart', { method: 'POST' });
  // Accept both the bare tracking object and `{"tracking": {...}}`.
  const tracking =
    data && typeof data === 'object' && 'tracking' in data ? data.tracking : data;
  return parseStatus({ tracking }).tracking;
}

/**
 * Props of {@link SidebarContent}.
 */
export interface ISidebarContentProps {
  model: StatusModel;
  trans: TranslationBundle;
  frontendVersion?: string;
  restart?: () => Promise<ITrackingStatus>;
  /**
   * Sign-in / sign-out actions (the buttons are hidden without it).
   */
  signIn?: SignInController;
  /**
   * Extra sections below the status and user (the MLflow browser).
   */
  body?: React.ReactNode;
  /**
   * What those sections are: Refresh refreshes them too, and "Last checked" is the oldest
   * check of everything shown.
   */
  sections?: ReadonlyArray<ISidebarSection>;
}

/**
 * The body of the InfinStor sidebar, rendered from a {@link StatusModel}.
 */
export function SidebarContent(props: ISidebarContentProps): JSX.Element {
  const { model, trans } = props;
  const frontendVersion = props.frontendVersion ?? FRONTEND_VERSION;
  const restart = props.restart ?? restartTracking;
  const [busy, setBusy] = React.useState<'refresh' | 'restart' | null>(null);
  const [actionError, setActionError] = React.useState<string | null>(null);

  const sections = props.sections ?? [];
  const onRefresh = async () => {
    setBusy('refresh');
    setActionError(null);
    try {
      // Everything the sidebar shows, not only the status (a section's failure is its own to show).
      await Promise.all([model.refresh(), ...sections.map(s => s.refresh().catch(() => undefined))]);
    } finally {
      setBusy(null);
    }
  };

  const onRestart = async () => {
    setBusy('restart');
    setActionError(null);
    try {
      model.updateTracking(await restart());
      await model.refresh();
    } catch (error) {
      setActionError(
        trans.__(
          'Could not restart the tracking service: %1',
          error instanceof Error ? error.message : String(error)
        )
      );
    } finally {
      setBusy(null);
    }
  };

  const status = model.status;
  const error = model.error;
  const mismatch = status ? versionMismatch(frontendVersion, status.version) : null;

  return (
    <div className="jp-InfinStor-sidebarContent">
      <header className="jp-InfinStor-header">
        <infinstorIcon.react
          tag="span"
          className="jp-InfinStor-headerIcon"
          width="20px"
          height="20px"
        />
        <h2 className="jp-InfinStor-title">{trans.__('InfinStor MLflow')}</h2>
        <Button
          minimal
          small
          className="jp-InfinStor-refresh"
          title={trans.__('Refresh the status and the lists')}
          aria-label={trans.__('Refresh the status and the lists')}
          data-testid="infinstor-refresh"
          disabled={busy !== null}
          onClick={() => void onRefresh()}
        >
          <refreshIcon.react tag="span" className="jp-InfinStor-refreshIcon" />
        </Button>
      </header>

      {model.loading && (
        <div className="jp-InfinStor-loading" role="status" data-testid="infinstor-loading">
          <span className="jp-InfinStor-spinner" aria-hidden="true" />
          {trans.__('Checking the tracking service…')}
        </div>
      )}

      {error && (
        <ErrorBanner
          error={error}
          missing={model.serverExtensionMissing}
          trans={trans}
        />
      )}

      {mismatch && (
        <div
          className="jp-InfinStor-banner jp-InfinStor-banner-warning"
          role="alert"
          data-testid="infinstor-version-mismatch"
        >
          {versionMismatchMessage(mismatch)}
        </div>
      )}

      {status && (
        <>
          <TrackingSection
            status={status}
            stale={error !== null}
            trans={trans}
            busy={busy}
            onRestart={() => void onRestart()}
          />
          {actionError && (
            <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert">
              {actionError}
            </div>
          )}
          <UserSection status={status} trans={trans} signIn={props.signIn} />
        </>
      )}

      {props.body}

      <footer className="jp-InfinStor-footer">
        <LastChecked model={model} sections={sections} trans={trans} />
        <span className="jp-InfinStor-versions">
          {status
            ? trans.__('Extension %1 · server %2', frontendVersion, status.version || '?')
            : trans.__('Extension %1', frontendVersion)}
        </span>
      </footer>
    </div>
  );
}

/**
 * When what the sidebar shows was last checked: the oldest of the status's and the sections'
 * last checks (a list that stopped being checked must not hide behind a fresh status).
 * Re-rendered every few seconds on its own, since a check that found nothing new does not
 * re-render the sidebar.
 */
function LastChecked(props: {
  model: StatusModel;
  sections: ReadonlyArray<ISidebarSection>;
  trans: TranslationBundle;
}): JSX.Element | null {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const timer = setInterval(() => setTick(t => t + 1), 2000);
    return () => clearInterval(timer);
  }, []);
  const times = [props.model.checkedAt, ...props.sections.map(s => s.checkedAt)].filter(t => t > 0);
  if (!props.model.checkedAt || !times.length) {
    return null;
  }
  const oldest = new Date(Math.min(...times));
  return (
    <span data-testid="infinstor-last-checked" title={props.trans.__('Status and lists are checked with the server by themselves while shown.')}>
      {props.trans.__('Last checked %1', formatTime(oldest))}
    </span>
  );
}

function ErrorBanner(props: {
  error: Error;
  missing: boolean;
  trans: TranslationBundle;
}): JSX.Element {
  const { error, missing, trans } = props;
  if (missing) {
    return (
      <div
        className="jp-InfinStor-banner jp-InfinStor-banner-warning"
        role="alert"
        data-testid="infinstor-server-missing"
      >
        {SERVER_EXTENSION_MISSING_MESSAGE}
      </div>
    );
  }
  const network = error instanceof InfinStorRequestError && error.isNetworkError;
  return (
    <div
      className="jp-InfinStor-banner jp-InfinStor-banner-error"
      role="alert"
      data-testid="infinstor-error"
    >
      <p className="jp-InfinStor-bannerTitle">
        {trans.__('Could not get the tracking service status.')}
      </p>
      <p>{error.message}</p>
      <p>
        {network
          ? trans.__(
              'Check that the Jupyter server is running, then press Refresh.'
            )
          : trans.__(
              'Press Refresh to try again. If it keeps failing, look at the Jupyter server log for details.'
            )}
      </p>
    </div>
  );
}

function TrackingSection(props: {
  status: IStatus;
  stale: boolean;
  trans: TranslationBundle;
  busy: 'refresh' | 'restart' | null;
  onRestart: () => void;
}): JSX.Element {
  const { status, stale, trans, busy, onRestart } = props;
  const tracking = status.tracking;
  const kind = stateKind(tracking.state);
  const state = stateLabel(tracking.state);
  const embedded = tracking.mode === 'embedded';
  return (
    <section
      className={`jp-InfinStor-section${stale ? ' jp-mod-stale' : ''}`}
      aria-labelledby="infinstor-tracking-heading"
    >
      <h3 id="infinstor-tracking-heading" className="jp-InfinStor-sectionTitle">
        {trans.__('Tracking service')}
        {stale && (
          <span className="jp-InfinStor-hint"> {trans.__('(last known)')}</span>
        )}
      </h3>
      <dl className="jp-InfinStor-fields">
        <dt>{trans.__('Mode')}</dt>
        <dd data-testid="infinstor-tracking-mode">{modeLabel(tracking)}</dd>
        <dt>{trans.__('State')}</dt>
        <dd>
          <span
            className={`jp-InfinStor-dot jp-InfinStor-dot-${kind}`}
            aria-hidden="true"
          />
          <span
            data-testid="infinstor-tracking-state"
            data-state={state}
            className="jp-InfinStor-state"
          >
            {state}
          </span>
        </dd>
        {embedded && tracking.uri && (
          <>
            <dt>{trans.__('Address')}</dt>
            <dd className="jp-InfinStor-uri" data-testid="infinstor-tracking-uri">
              {tracking.uri}
            </dd>
          </>
        )}
        {status.auth?.configured && status.auth.issuer && (
          <>
            <dt>{trans.__('Sign-in')}</dt>
            <dd className="jp-InfinStor-uri" data-testid="infinstor-auth-issuer">
              {status.auth.issuer}
            </dd>
          </>
        )}
        {!embedded && status.auth?.service && status.auth.service !== tracking.uri && (
          <>
            <dt>{trans.__('Service')}</dt>
            <dd className="jp-InfinStor-uri" data-testid="infinstor-auth-service">
              {status.auth.service}
            </dd>
          </>
        )}
        {tracking.mlflow_version && (
          <>
            <dt>{trans.__('MLflow')}</dt>
            <dd data-testid="infinstor-mlflow-version">{tracking.mlflow_version}</dd>
          </>
        )}
      </dl>
      {shouldShowMessage(tracking) && (
        <p
          className={`jp-InfinStor-message jp-InfinStor-message-${kind}`}
          data-testid="infinstor-tracking-message"
        >
          {tracking.message}
        </p>
      )}
      {kind === 'error' && embedded && (
        <Button
          className="jp-mod-styled jp-mod-accept jp-InfinStor-restart"
          data-testid="infinstor-restart"
          disabled={busy !== null}
          onClick={onRestart}
        >
          {busy === 'restart'
            ? trans.__('Restarting…')
            : trans.__('Restart tracking service')}
        </Button>
      )}
    </section>
  );
}

/**
 * The InfinStor sidebar panel: the tracking service's status, who is signed in, and the
 * sections other plugins add below ({@link IInfinStorSidebar}).
 */
export class InfinStorSidebar extends ReactWidget implements IInfinStorSidebar {
  constructor(options: InfinStorSidebar.IOptions) {
    super();
    this._model = options.model;
    this._signIn = options.signIn;
    this._translator = options.translator ?? nullTranslator;
    const trans = this._translator.load('infinstor_jupyterlab');
    this.id = SIDEBAR_ID;
    this.addClass('jp-InfinStor-sidebar');
    this.title.icon = infinstorIcon;
    this.title.label = trans.__('MLflow');
    this.title.caption = trans.__('InfinStor MLflow: experiments, runs and models');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('InfinStor MLflow'));
  }

  get model(): StatusModel {
    return this._model;
  }

  get status(): StatusModel {
    return this._model;
  }

  get visibilityChanged(): ISignal<this, boolean> {
    return this._visibilityChanged;
  }

  addSection(section: ISidebarSection, view: React.ReactNode): IDisposable {
    const entry = { section, view };
    this._sections = [...this._sections, entry];
    this.update();
    return new DisposableDelegate(() => {
      this._sections = this._sections.filter(e => e !== entry);
      this.update();
    });
  }

  /**
   * Set the view shown below the status and user (kept for callers of the earlier API; a
   * section added with `addSection` also takes part in Refresh and "Last checked").
   */
  setBody(body: React.ReactNode): void {
    this._body = body;
    this.update();
  }

  protected render(): JSX.Element {
    const trans = this._translator.load('infinstor_jupyterlab');
    const sections = this._sections.map(e => e.section);
    const body = (
      <>
        {this._body}
        {this._sections.map((e, i) => (
          <React.Fragment key={i}>{e.view}</React.Fragment>
        ))}
      </>
    );
    return (
      <UseSignal signal={this._model.changed} initialSender={this._model}>
        {() => (
          <SidebarContent
            model={this._model}
            trans={trans}
            body={body}
            sections={sections}
            signIn={this._signIn}
          />
        )}
      </UseSignal>
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._visibilityChanged.emit(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._visibilityChanged.emit(false);
  }

  private _body: React.ReactNode = null;
  private _sections: Array<{ section: ISidebarSection; view: React.ReactNode }> = [];
  private _model: StatusModel;
  private _signIn: SignInController | undefined;
  private _translator: ITranslator;
  private _visibilityChanged = new Signal<this, boolean>(this);
}

export namespace InfinStorSidebar {
  export interface IOptions {
    model: StatusModel;
    translator?: ITranslator;
    signIn?: SignInController;
  }
}
