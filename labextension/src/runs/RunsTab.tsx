/**
 * An experiment's runs in a main-area tab: filter, columns (by default what differs), sort,
 * widths (all kept per experiment), the virtualized table, select runs and compare them.
 */
import { Button, launchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { ColumnId, describeError, explainFilterError } from '../mlflow/format';
import { IRun } from '../mlflow/types';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, useSignal, useTrans } from '../mlflow/views/common';
import { ColumnPicker } from './ColumnPicker';
import { automaticColumns } from './columns';
import { ExperimentRunsModel } from './model';
import { RunsTable } from './RunsTable';
import { IRunsViewSettings, RunsViewStateStore } from './viewState';

/** The automatic columns look at this many runs (later pages do not make columns jump). */
const AUTO_SAMPLE = 500;

/** An experiment's saved view settings; re-renders when they change. */
export function useViewSettings(store: RunsViewStateStore, experimentId: string): IRunsViewSettings {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const slot = (_: RunsViewStateStore, id: string) => {
      if (id === experimentId) {
        setTick(t => t + 1);
      }
    };
    store.changed.connect(slot);
    void store.load(experimentId);
    return () => {
      store.changed.disconnect(slot);
    };
  }, [store, experimentId]);
  return store.get(experimentId);
}

/**
 * What the runs views say about a failed query: a filter MLflow refused is explained in
 * words (with MLflow's own message below); anything else is the usual error state.
 */
export function RunsError(props: { model: ExperimentRunsModel; compact?: boolean }): JSX.Element | null {
  const trans = useTrans();
  const { model } = props;
  const error = model.error;
  if (!error) {
    return null;
  }
  const d = describeError(error, trans);
  if (d.kind === 'invalid' && model.query.filter.trim()) {
    return (
      <div className="jp-InfinStor-state jp-InfinStor-state-error jp-mod-compact" role="alert" data-testid="infinstor-filter-error">
        <p className="jp-InfinStor-stateTitle">{trans.__('This filter is not valid, so no runs are shown.')}</p>
        <p>{explainFilterError(d.message, trans)}</p>
        <p className="jp-InfinStor-stateHint">{trans.__('MLflow says: %1', d.message)}</p>
      </div>
    );
  }
  return (
    <ErrorState
      error={error}
      what={trans.__('Could not load the runs.')}
      compact={props.compact}
      trans={trans}
      onRetry={() => model.reload()}
    />
  );
}

/** "50+ runs" / "1,234 runs" / "—" after an error / "…" while loading. */
export function runsCount(model: ExperimentRunsModel, trans: ReturnType<typeof useTrans>): string {
  if (!model.hasPage) {
    return model.error ? trans.__('no runs') : trans.__('loading…');
  }
  const n = model.runs.length;
  return model.hasMore ? trans.__('%1+ runs', n) : n === 1 ? trans.__('1 run') : trans.__('%1 runs', n);
}

export function RunsTab(props: {
  model: ExperimentRunsModel;
  store: RunsViewStateStore;
  experimentName: string;
  actions: IMlflowActions;
  /** The selection changed (the compare command reads it). */
  onSelection?: (runIds: string[]) => void;
}): JSX.Element {
  const { model, store, actions } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const experimentId = model.experimentId;
  const settings = useViewSettings(store, experimentId);
  const [filter, setFilter] = React.useState(settings.filter);
  const [selected, setSelected] = React.useState<ReadonlySet<string>>(new Set());

  // The saved filter may come after the first render (state database) or from the sidebar.
  React.useEffect(() => setFilter(settings.filter), [settings.filter]);

  const runs = model.runs;
  const sample = React.useMemo(() => (runs.length > AUTO_SAMPLE ? runs.slice(0, AUTO_SAMPLE) : runs), [runs]);
  const automatic = settings.columns === null;
  const columns = React.useMemo<ColumnId[]>(
    () => settings.columns ?? automaticColumns(sample),
    [settings.columns, sample]
  );

  const toggle = React.useCallback(
    (id: string) =>
      setSelected(prev => {
        const next = new Set(prev);
        if (next.has(id)) {
          next.delete(id);
        } else {
          next.add(id);
        }
        props.onSelection?.([...next]);
        return next;
      }),
    [props.onSelection]
  );
  const openRun = React.useCallback((run: IRun) => actions.openRun(run.info.run_id), [actions]);
  const openSource = React.useCallback((path: string) => actions.openNotebook(path), [actions]);

  return (
    <div className="jp-InfinStor-runsTab" data-testid="infinstor-runs-tab" data-experiment-id={experimentId}>
      <header className="jp-InfinStor-detailHeader">
        <h2 className="jp-InfinStor-detailTitle" data-testid="infinstor-runs-tab-title" title={props.experimentName}>
          {props.experimentName}
        </h2>
        <span className="jp-InfinStor-hint" data-testid="infinstor-runs-count" aria-live="polite">
          {runsCount(model, trans)}
          {model.stale ? ` ${trans.__('(updating…)')}` : ''}
        </span>
        <span className="jp-InfinStor-spacer" />
        <RefreshButton label={trans.__('Refresh runs')} onClick={() => model.reload()} />
        <Button
          minimal
          small
          className="jp-InfinStor-iconButton"
          title={trans.__('Open this experiment in MLflow UI')}
          aria-label={trans.__('Open this experiment in MLflow UI')}
          data-testid="infinstor-runs-open-ui"
          onClick={() => actions.openUi(`#/experiments/${experimentId}/runs`, props.experimentName)}
        >
          <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
      </header>
      <div className="jp-InfinStor-toolbar jp-InfinStor-runsToolbar">
        <form
          className="jp-InfinStor-filterForm"
          onSubmit={e => {
            e.preventDefault();
            store.update(experimentId, { filter: filter.trim() });
          }}
        >
          <input
            type="search"
            className="jp-InfinStor-input jp-InfinStor-filter"
            aria-label={trans.__('Filter runs: a run name, or MLflow search syntax')}
            placeholder={trans.__("Run name, or metrics.loss < 0.2 and params.lr = '0.01'")}
            value={filter}
            data-testid="infinstor-runs-filter"
            onChange={e => setFilter(e.target.value)}
          />
          <Button type="submit" small className="jp-mod-styled" data-testid="infinstor-runs-filter-apply">
            {trans.__('Filter')}
          </Button>
          {settings.filter && (
            <Button
              small
              className="jp-mod-styled"
              data-testid="infinstor-runs-filter-clear"
              onClick={() => {
                setFilter('');
                store.update(experimentId, { filter: '' });
              }}
            >
              {trans.__('Clear')}
            </Button>
          )}
        </form>
        <ColumnPicker
          runs={sample}
          shown={columns}
          automatic={automatic}
          onChange={next => store.update(experimentId, { columns: next })}
        />
        <span className="jp-InfinStor-spacer" />
        <Button
          small
          className="jp-mod-styled jp-mod-accept"
          disabled={selected.size < 2}
          title={selected.size < 2 ? trans.__('Select two or more runs to compare') : trans.__('Compare %1 runs', selected.size)}
          data-testid="infinstor-compare"
          onClick={() => actions.compareRuns([...selected])}
        >
          {selected.size ? trans.__('Compare (%1)', selected.size) : trans.__('Compare')}
        </Button>
      </div>
      <RunsError model={model} compact />
      {!model.hasPage && !model.error && <LoadingState label={trans.__('Loading runs…')} />}
      {model.hasPage && !model.error && runs.length === 0 && (
        <EmptyState
          title={settings.filter ? trans.__('No runs match this filter.') : trans.__('No runs in this experiment yet.')}
          hint={
            settings.filter
              ? trans.__('Change or clear the filter.')
              : trans.__('Runs appear here when a notebook logs with mlflow.start_run().')
          }
        />
      )}
      {runs.length > 0 && (
        <RunsTable
          model={model}
          columns={columns}
          widths={settings.widths}
          onResize={widths => store.update(experimentId, { widths })}
          sort={settings.sort}
          onSort={sort => store.update(experimentId, { sort })}
          selected={selected}
          onToggle={toggle}
          onOpen={openRun}
          onOpenSource={openSource}
          label={trans.__('Runs of %1', props.experimentName)}
        />
      )}
    </div>
  );
}
