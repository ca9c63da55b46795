/**
 * The sidebar's compact list of an experiment's runs: status, name, one chosen metric, age.
 * The same runs (and filter and sort) as the experiment's runs tab; the wide view is the tab.
 */
import { Button, launchIcon } from '@jupyterlab/ui-components';
import { useVirtualizer } from '@tanstack/react-virtual';
import React from 'react';

import { columnValue, formatIso, formatRelative, numberFormatter, runName } from '../mlflow/format';
import { IExperiment } from '../mlflow/types';
import { IMlflowActions, RefreshButton, StatusBadge, useSignal, useTrans } from '../mlflow/views/common';
import { metricKeys } from './columns';
import { ExperimentRunsModel } from './model';
import { RunsError, runsCount, useViewSettings } from './RunsTab';
import { RunsViewStateStore } from './viewState';

const ITEM_HEIGHT = 26;

export function RunsList(props: {
  model: ExperimentRunsModel;
  store: RunsViewStateStore;
  experiment: IExperiment;
  actions: IMlflowActions;
  onBack: () => void;
  /** Extra header buttons (e.g. Share…). */
  extra?: React.ReactNode;
}): JSX.Element {
  const { model, store, experiment, actions } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const settings = useViewSettings(store, experiment.experiment_id);
  const scrollRef = React.useRef<HTMLDivElement>(null);
  const runs = model.runs;

  // Poll only while the list is on screen.
  React.useEffect(() => {
    const el = scrollRef.current;
    const viewer = {};
    if (!el || typeof IntersectionObserver === 'undefined') {
      model.setVisible(viewer, true);
      return () => model.setVisible(viewer, false);
    }
    const observer = new IntersectionObserver(entries => model.setVisible(viewer, entries.some(e => e.isIntersecting)));
    observer.observe(el);
    return () => {
      observer.disconnect();
      model.setVisible(viewer, false);
    };
  }, [model]);

  const sample = React.useMemo(() => (runs.length > 500 ? runs.slice(0, 500) : runs), [runs]);
  const metrics = React.useMemo(() => metricKeys(sample), [sample]);
  const metric = settings.listMetric && metrics.includes(settings.listMetric) ? settings.listMetric : metrics[0] ?? null;
  const format = React.useMemo(
    () => numberFormatter(metric ? runs.map(r => columnValue(r, `metric:${metric}`) as number | null) : []),
    [runs, metric]
  );
  const now = Date.now();

  const hasMore = model.hasMore;
  const virtualizer = useVirtualizer({
    count: runs.length + (hasMore ? 1 : 0),
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ITEM_HEIGHT,
    overscan: 8
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1].index : -1;
  React.useEffect(() => {
    if (hasMore && !model.loadingMore && !model.moreError && lastIndex >= runs.length - 10) {
      void model.loadMore();
    }
  }, [lastIndex, runs.length, hasMore, model.loadingMore, model.moreError, model]);

  return (
    <div className="jp-InfinStor-runsView jp-InfinStor-runsList" data-testid="infinstor-runs-view">
      <div className="jp-InfinStor-runsTitle">
        <Button
          minimal
          small
          className="jp-InfinStor-backButton"
          aria-label={trans.__('Back to experiments')}
          title={trans.__('Back to experiments')}
          data-testid="infinstor-runs-back"
          onClick={props.onBack}
        >
          {trans.__('‹ Experiments')}
        </Button>
        <h4 className="jp-InfinStor-runsHeading" title={experiment.name} data-testid="infinstor-runs-experiment">
          {experiment.name}
        </h4>
        <RefreshButton label={trans.__('Refresh runs')} onClick={() => model.reload()} />
        {props.extra}
        <Button
          minimal
          small
          className="jp-InfinStor-iconButton"
          title={trans.__('Open the runs of %1 in a tab', experiment.name)}
          aria-label={trans.__('Open the runs of %1 in a tab', experiment.name)}
          data-testid="infinstor-runs-open-tab"
          onClick={() => actions.openRuns(experiment.experiment_id, experiment.name)}
        >
          <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
      </div>
      <div className="jp-InfinStor-toolbar">
        {metrics.length > 0 && (
          <label className="jp-InfinStor-listMetric">
            {trans.__('Metric')}{' '}
            <select
              className="jp-mod-styled"
              value={metric ?? ''}
              data-testid="infinstor-list-metric"
              onChange={e => store.update(experiment.experiment_id, { listMetric: e.target.value })}
            >
              {metrics.map(k => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          </label>
        )}
        <span className="jp-InfinStor-spacer" />
        <span className="jp-InfinStor-hint" data-testid="infinstor-list-count">
          {runsCount(model, trans)}
        </span>
      </div>
      {settings.filter && (
        <p className="jp-InfinStor-hint jp-InfinStor-listFilter" title={settings.filter}>
          {trans.__('Filtered: %1', settings.filter)}
        </p>
      )}
      <RunsError model={model} compact />
      <div
        ref={scrollRef}
        className={`jp-InfinStor-runsScroller${model.stale ? ' jp-mod-stale' : ''}`}
        role="list"
        aria-label={trans.__('Runs of %1', experiment.name)}
        aria-busy={model.busy}
        data-testid="infinstor-runs-list"
      >
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map(item => {
            const run = runs[item.index];
            if (!run) {
              return (
                <div key="loader" role="listitem" className="jp-InfinStor-listRun jp-InfinStor-runsLoader" style={{ transform: `translateY(${item.start}px)`, height: ITEM_HEIGHT }}>
                  {model.moreError ? trans.__('Could not load more runs.') : trans.__('Loading more runs…')}
                </div>
              );
            }
            const value = metric ? columnValue(run, `metric:${metric}`) : null;
            const name = runName(run);
            return (
              <div
                key={run.info.run_id}
                role="listitem"
                className="jp-InfinStor-listRun"
                data-testid="infinstor-list-run"
                data-run-id={run.info.run_id}
                style={{ transform: `translateY(${item.start}px)`, height: ITEM_HEIGHT }}
              >
                <StatusBadge status={run.info.status} trans={trans} />
                <button
                  className="jp-InfinStor-linkButton jp-InfinStor-listRunName"
                  title={trans.__('Open run %1', name)}
                  onClick={() => actions.openRun(run.info.run_id)}
                >
                  {name}
                </button>
                <span className="jp-InfinStor-listRunMetric" title={metric ? `${metric} = ${value ?? '—'}` : undefined}>
                  {value === null ? '' : format(value)}
                </span>
                <span className="jp-InfinStor-listRunAge" title={formatIso(run.info.start_time)}>
                  {formatRelative(run.info.start_time, now, trans)}
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
