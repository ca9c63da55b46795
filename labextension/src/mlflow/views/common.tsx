import { TranslationBundle } from '@jupyterlab/translation';
import { Button, refreshIcon } from '@jupyterlab/ui-components';
import { ISignal } from '@lumino/signaling';
import React from 'react';

import { DEFAULT_TRANS, describeError, statusKind, statusLabel } from '../format';

/**
 * The extension's translations for the MLflow views (the browser's root provides them; without
 * a provider the views speak English).
 */
export const TranslationContext = React.createContext<TranslationBundle>(DEFAULT_TRANS);

/** The translations of the MLflow views (`trans.__('…')` for every user-visible string). */
export function useTrans(): TranslationBundle {
  return React.useContext(TranslationContext);
}

/**
 * Re-render when a model's `changed` signal fires.
 */
export function useSignal(signal: ISignal<any, any> | null | undefined): number {
  const [tick, setTick] = React.useState(0);
  React.useEffect(() => {
    if (!signal) {
      return;
    }
    const slot = () => setTick(t => t + 1);
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
  return tick;
}

/**
 * Debounce a value.
 */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = React.useState(value);
  React.useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

/**
 * Error state: what happened (the server's own message) and what to do.
 */
export function ErrorState(props: {
  error: unknown;
  what?: string;
  onRetry?: () => void;
  compact?: boolean;
  trans?: TranslationBundle;
}): JSX.Element {
  const context = useTrans();
  const trans = props.trans ?? context;
  const d = describeError(props.error, trans);
  return (
    <div
      className={`jp-InfinStor-state jp-InfinStor-state-error${props.compact ? ' jp-mod-compact' : ''}`}
      role="alert"
      data-testid="infinstor-mlflow-error"
      data-error-kind={d.kind}
    >
      <p className="jp-InfinStor-stateTitle">
        {props.what ? `${props.what} ${d.title}` : d.title}
      </p>
      {d.message && d.message !== d.title && <p className="jp-InfinStor-stateMessage">{d.message}</p>}
      <p className="jp-InfinStor-stateHint">{d.hint}</p>
      {props.onRetry && (
        <Button className="jp-mod-styled jp-mod-reject" small onClick={props.onRetry}>
          {trans.__('Retry')}
        </Button>
      )}
    </div>
  );
}

export function LoadingState(props: { label: string }): JSX.Element {
  return (
    <div className="jp-InfinStor-state jp-InfinStor-state-loading" role="status" data-testid="infinstor-mlflow-loading">
      <span className="jp-InfinStor-spinner" aria-hidden="true" />
      {props.label}
    </div>
  );
}

export function EmptyState(props: { title: string; hint?: React.ReactNode; testid?: string }): JSX.Element {
  return (
    <div className="jp-InfinStor-state jp-InfinStor-state-empty" data-testid={props.testid ?? 'infinstor-mlflow-empty'}>
      <p className="jp-InfinStor-stateTitle">{props.title}</p>
      {props.hint && <p className="jp-InfinStor-stateHint">{props.hint}</p>}
    </div>
  );
}

export function StatusBadge(props: { status: string; showLabel?: boolean; trans?: TranslationBundle }): JSX.Element {
  const context = useTrans();
  const label = statusLabel(props.status, props.trans ?? context);
  return (
    <span className="jp-InfinStor-runStatus" title={label} data-status={props.status}>
      <span className={`jp-InfinStor-dot jp-InfinStor-dot-${statusKind(props.status)}`} aria-hidden="true" />
      {props.showLabel ? label : <span className="jp-InfinStor-srOnly">{label}</span>}
    </span>
  );
}

export function RefreshButton(props: { label: string; onClick: () => void; disabled?: boolean }): JSX.Element {
  return (
    <Button
      minimal
      small
      className="jp-InfinStor-iconButton"
      title={props.label}
      aria-label={props.label}
      disabled={props.disabled}
      onClick={props.onClick}
    >
      <refreshIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
    </Button>
  );
}

/**
 * An accessible tab list (arrow keys move between tabs).
 */
export function Tabs<T extends string>(props: {
  label: string;
  tabs: Array<{ id: T; label: string }>;
  current: T;
  onChange: (id: T) => void;
  idPrefix: string;
}): JSX.Element {
  const refs = React.useRef<Record<string, HTMLButtonElement | null>>({});
  const onKeyDown = (event: React.KeyboardEvent) => {
    const index = props.tabs.findIndex(t => t.id === props.current);
    let next = index;
    if (event.key === 'ArrowRight') {
      next = (index + 1) % props.tabs.length;
    } else if (event.key === 'ArrowLeft') {
      next = (index - 1 + props.tabs.length) % props.tabs.length;
    } else if (event.key === 'Home') {
      next = 0;
    } else if (event.key === 'End') {
      next = props.tabs.length - 1;
    } else {
      return;
    }
    event.preventDefault();
    const id = props.tabs[next].id;
    props.onChange(id);
    refs.current[id]?.focus();
  };
  return (
    <div className="jp-InfinStor-tabs" role="tablist" aria-label={props.label} onKeyDown={onKeyDown}>
      {props.tabs.map(tab => (
        <button
          key={tab.id}
          ref={el => (refs.current[tab.id] = el)}
          role="tab"
          id={`${props.idPrefix}-tab-${tab.id}`}
          aria-selected={tab.id === props.current}
          aria-controls={`${props.idPrefix}-panel-${tab.id}`}
          tabIndex={tab.id === props.current ? 0 : -1}
          className={`jp-InfinStor-tab${tab.id === props.current ? ' jp-mod-current' : ''}`}
          data-testid={`${props.idPrefix}-tab-${tab.id}`}
          onClick={() => props.onChange(tab.id)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  );
}

/**
 * Callbacks from the views to the application (commands, main-area tabs).
 */
export interface IMlflowActions {
  openRun: (runId: string) => void;
  compareRuns: (runIds: string[]) => void;
  openUi: (hash: string, label: string) => void;
  openNotebook: (path: string) => void;
  /** The runs of an experiment in a main-area tab. */
  openRuns: (experimentId: string, name?: string) => void;
  /** A job in the Jobs view (its log); null while no Jobs view offers it (the jobs plugin is off). */
  readonly openJob: ((jobId: string) => void) | null;
}
