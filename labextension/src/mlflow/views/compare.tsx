import React from 'react';

import { formatDuration, formatMetric, formatTimestamp, runDuration, runName, valuesDiffer } from '../format';
import { CompareModel } from '../models';
import { IRun } from '../types';
import { IChartSeries, MetricChart, XAxis } from './chart';
import { ErrorState, IMlflowActions, LoadingState, StatusBadge, useSignal } from './common';

/**
 * Two or more runs side by side: params and metrics (differences highlighted)
 * and the metric histories overlaid on one chart.
 */
export function CompareRuns(props: { model: CompareModel; actions: IMlflowActions }): JSX.Element {
  const { model, actions } = props;
  useSignal(model.changed);
  const [onlyDiff, setOnlyDiff] = React.useState(false);
  const runs = model.runs;
  const metricKeys = React.useMemo(
    () => [...new Set(runs.flatMap(r => (r.data.metrics ?? []).map(m => m.key)))].sort(),
    [runs]
  );
  const paramKeys = React.useMemo(
    () => [...new Set(runs.flatMap(r => (r.data.params ?? []).map(p => p.key)))].sort(),
    [runs]
  );
  const [metric, setMetric] = React.useState<string>('');
  const [xAxis, setXAxis] = React.useState<XAxis>('step');
  const [series, setSeries] = React.useState<IChartSeries[] | null>(null);
  const [chartError, setChartError] = React.useState<unknown>(null);
  const current = metric || metricKeys[0] || '';

  React.useEffect(() => {
    if (!current) {
      return;
    }
    let cancelled = false;
    setSeries(null);
    setChartError(null);
    model.histories(current).then(
      h => !cancelled && setSeries(h.map(x => ({ label: runName(x.run), points: x.points }))),
      e => !cancelled && setChartError(e)
    );
    return () => {
      cancelled = true;
    };
  }, [model, current, runs]);

  if (!runs.length) {
    return (
      <div className="jp-InfinStor-detail" data-testid="infinstor-compare">
        {model.error ? <ErrorState error={model.error} what="Could not load the runs." onRetry={() => void model.refresh()} /> : <LoadingState label="Loading runs…" />}
      </div>
    );
  }

  const param = (r: IRun, k: string) => r.data.params?.find(p => p.key === k)?.value;
  const metricValue = (r: IRun, k: string) => r.data.metrics?.find(m => m.key === k)?.value;
  const rowsFor = (keys: string[], get: (r: IRun, k: string) => any, fmt: (v: any) => string) =>
    keys
      .map(k => ({ k, values: runs.map(r => get(r, k)) }))
      .filter(row => !onlyDiff || valuesDiffer(row.values))
      .map(({ k, values }) => {
        const differ = valuesDiffer(values);
        return (
          <tr key={k} className={differ ? 'jp-InfinStor-diff' : undefined} data-differs={differ}>
            <th scope="row">
              {k}
              {differ && <span className="jp-InfinStor-srOnly"> (differs)</span>}
            </th>
            {values.map((v, i) => (
              <td key={i}>{v === undefined ? '—' : fmt(v)}</td>
            ))}
          </tr>
        );
      });

  const head = (
    <thead>
      <tr>
        <th scope="col">
          <span className="jp-InfinStor-srOnly">Name</span>
        </th>
        {runs.map(r => (
          <th key={r.info.run_id} scope="col">
            <button className="jp-InfinStor-linkButton" onClick={() => actions.openRun(r.info.run_id)} title={`Open run ${runName(r)}`}>
              {runName(r)}
            </button>
          </th>
        ))}
      </tr>
    </thead>
  );

  return (
    <div className="jp-InfinStor-detail jp-InfinStor-compare" data-testid="infinstor-compare">
      <header className="jp-InfinStor-detailHeader">
        <h2 className="jp-InfinStor-detailTitle">Compare {runs.length} runs</h2>
        <span className="jp-InfinStor-spacer" />
        <label>
          <input type="checkbox" checked={onlyDiff} onChange={() => setOnlyDiff(!onlyDiff)} data-testid="infinstor-compare-only-diff" /> Only differences
        </label>
      </header>
      <div className="jp-InfinStor-detailBody">
        <h3 className="jp-InfinStor-sectionTitle">Runs</h3>
        <table className="jp-InfinStor-table jp-InfinStor-compareTable" aria-label="Runs">
          {head}
          <tbody>
            <tr>
              <th scope="row">Status</th>
              {runs.map(r => (
                <td key={r.info.run_id}>
                  <StatusBadge status={r.info.status} showLabel />
                </td>
              ))}
            </tr>
            <tr>
              <th scope="row">Started</th>
              {runs.map(r => (
                <td key={r.info.run_id}>{formatTimestamp(r.info.start_time)}</td>
              ))}
            </tr>
            <tr>
              <th scope="row">Duration</th>
              {runs.map(r => (
                <td key={r.info.run_id}>{formatDuration(runDuration(r))}</td>
              ))}
            </tr>
          </tbody>
        </table>
        <h3 className="jp-InfinStor-sectionTitle">Parameters</h3>
        <table className="jp-InfinStor-table jp-InfinStor-compareTable" aria-label="Parameters" data-testid="infinstor-compare-params">
          {head}
          <tbody>{rowsFor(paramKeys, param, v => String(v))}</tbody>
        </table>
        <h3 className="jp-InfinStor-sectionTitle">Metrics (latest)</h3>
        <table className="jp-InfinStor-table jp-InfinStor-compareTable" aria-label="Metrics" data-testid="infinstor-compare-metrics">
          {head}
          <tbody>{rowsFor(metricKeys, metricValue, v => formatMetric(v))}</tbody>
        </table>
        {metricKeys.length > 0 && (
          <>
            <div className="jp-InfinStor-toolbar">
              <label>
                Metric{' '}
                <select className="jp-mod-styled" value={current} onChange={e => setMetric(e.target.value)} data-testid="infinstor-compare-metric">
                  {metricKeys.map(k => (
                    <option key={k} value={k}>
                      {k}
                    </option>
                  ))}
                </select>
              </label>
              <span role="radiogroup" aria-label="X axis">
                {(['step', 'time'] as const).map(x => (
                  <label key={x}>
                    <input type="radio" name="compare-xaxis" checked={xAxis === x} onChange={() => setXAxis(x)} /> {x === 'step' ? 'Step' : 'Time'}
                  </label>
                ))}
              </span>
            </div>
            <div data-testid="infinstor-compare-chart">
              {chartError ? <ErrorState error={chartError} what="Could not load the histories." compact /> : null}
              {!series && !chartError && <LoadingState label="Loading histories…" />}
              {series && <MetricChart series={series} xAxis={xAxis} title={`${current} — all runs`} height={260} />}
            </div>
          </>
        )}
      </div>
    </div>
  );
}
