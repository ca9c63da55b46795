/**
 * Runs compared (main-area tab): a grid with every metric they share, all runs overlaid in
 * distinct colours with one legend; a scatter of any parameter against any metric; and their
 * parameters and metrics side by side, differences marked.
 */
import React from 'react';

import { formatDuration, formatIso, formatRelative, numberFormatter, runDuration, runName, valuesDiffer } from '../mlflow/format';
import { IRun } from '../mlflow/types';
import { ErrorState, IMlflowActions, LoadingState, RefreshButton, StatusBadge, Tabs, useSignal, useTrans } from '../mlflow/views/common';
import { IChartSeries, sharedMetricKeys } from './chartData';
import { ChartControls, DEFAULT_CHART_SETTINGS, IChartSettings, Legend, MetricChart, ScatterChart, useRunColors } from './charts';
import { availableKeys, differingColumns } from './columns';
import { CompareModel } from './compareModel';
import { useInView } from './hooks';

type CompareTab = 'charts' | 'scatter' | 'table';

export function CompareRuns(props: { model: CompareModel; actions: IMlflowActions }): JSX.Element {
  const { model, actions } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const [tab, setTab] = React.useState<CompareTab>('charts');
  const runs = model.runs;
  const colors = useRunColors(Math.max(1, runs.length));
  const names = React.useMemo(() => runs.map(runName), [runs]);

  if (!runs.length) {
    return (
      <div className="jp-InfinStor-detail" data-testid="infinstor-compare">
        {model.error ? (
          <ErrorState error={model.error} what={trans.__('Could not load the runs.')} trans={trans} onRetry={() => void model.reload()} />
        ) : (
          <LoadingState label={trans.__('Loading runs…')} />
        )}
      </div>
    );
  }

  return (
    <div className="jp-InfinStor-detail jp-InfinStor-compare" data-testid="infinstor-compare">
      <header className="jp-InfinStor-detailHeader">
        <h2 className="jp-InfinStor-detailTitle">{trans.__('Compare %1 runs', runs.length)}</h2>
        <span className="jp-InfinStor-spacer" />
        <RefreshButton label={trans.__('Refresh runs')} onClick={() => void model.reload()} />
      </header>
      {model.error && <ErrorState error={model.error} what={trans.__('Could not refresh the runs.')} compact trans={trans} />}
      <ul className="jp-InfinStor-legend jp-InfinStor-compareLegend" aria-label={trans.__('Runs')} data-testid="infinstor-compare-legend">
        {runs.map((r, i) => (
          <li key={r.info.run_id} className="jp-InfinStor-legendItem">
            <span className="jp-InfinStor-legendDot" style={{ background: colors[i] }} aria-hidden="true" />
            <button className="jp-InfinStor-linkButton" onClick={() => actions.openRun(r.info.run_id)} title={trans.__('Open run %1', names[i])}>
              {names[i]}
            </button>
          </li>
        ))}
      </ul>
      <Tabs<CompareTab>
        label={trans.__('Comparison')}
        idPrefix="infinstor-compare"
        current={tab}
        onChange={setTab}
        tabs={[
          { id: 'charts', label: trans.__('Charts') },
          { id: 'scatter', label: trans.__('Parameter vs metric') },
          { id: 'table', label: trans.__('Parameters and metrics') }
        ]}
      />
      <div className="jp-InfinStor-detailBody" role="tabpanel" id={`infinstor-compare-panel-${tab}`} aria-labelledby={`infinstor-compare-tab-${tab}`}>
        {tab === 'charts' && <ChartGrid model={model} names={names} colors={colors} />}
        {tab === 'scatter' && <Scatter runs={runs} names={names} colors={colors} />}
        {tab === 'table' && <CompareTable runs={runs} names={names} actions={actions} />}
      </div>
    </div>
  );
}

function ChartGrid(props: { model: CompareModel; names: string[]; colors: string[] }): JSX.Element {
  const { model } = props;
  const trans = useTrans();
  const runs = model.runs;
  const [settings, setSettings] = React.useState<IChartSettings>(DEFAULT_CHART_SETTINGS);
  const keys = React.useMemo(() => sharedMetricKeys(runs), [runs]);
  const lonely = React.useMemo(() => {
    const shared = new Set(keys);
    return availableKeys(runs).metrics.filter(k => !shared.has(k));
  }, [runs, keys]);
  if (!keys.length) {
    return <p className="jp-InfinStor-hint">{trans.__('These runs share no metric.')}</p>;
  }
  return (
    <div data-testid="infinstor-compare-charts">
      <ChartControls settings={settings} onChange={setSettings} idPrefix="compare" />
      <div className="jp-InfinStor-chartGrid jp-InfinStor-compareGrid" data-testid="infinstor-compare-grid">
        {keys.map(k => (
          <CompareChart key={k} model={model} metric={k} names={props.names} colors={props.colors} settings={settings} />
        ))}
      </div>
      {lonely.length > 0 && (
        <p className="jp-InfinStor-hint">{trans.__('Logged by one of these runs only: %1', lonely.join(', '))}</p>
      )}
    </div>
  );
}

function CompareChart(props: { model: CompareModel; metric: string; names: string[]; colors: string[]; settings: IChartSettings }): JSX.Element {
  const { model, metric } = props;
  const trans = useTrans();
  const [ref, inView] = useInView<HTMLDivElement>();
  const [state, setState] = React.useState<{ series: IChartSeries[] | null; error: unknown }>({ series: null, error: null });
  const runs = model.runs;
  React.useEffect(() => {
    if (!inView) {
      return;
    }
    let cancelled = false;
    model.histories(metric).then(
      byRun =>
        !cancelled &&
        setState({
          series: runs
            .map((r, i) => ({ label: props.names[i], color: props.colors[i], points: byRun.get(r.info.run_id) ?? [] }))
            .filter(s => s.points.length > 0),
          error: null
        }),
      error => !cancelled && setState({ series: null, error })
    );
    return () => {
      cancelled = true;
    };
  }, [model, metric, runs, props.names, props.colors, inView]);
  return (
    <div ref={ref} className="jp-InfinStor-chartSlot" data-testid="infinstor-compare-chart" data-metric={metric}>
      {state.error ? (
        <ErrorState error={state.error} what={trans.__('Could not load the history of %1.', metric)} compact trans={trans} />
      ) : !state.series ? (
        <LoadingState label={trans.__('Loading %1…', metric)} />
      ) : (
        <MetricChart title={metric} series={state.series} settings={props.settings} />
      )}
    </div>
  );
}

function Scatter(props: { runs: IRun[]; names: string[]; colors: string[] }): JSX.Element {
  const { runs } = props;
  const trans = useTrans();
  const keys = React.useMemo(() => availableKeys(runs), [runs]);
  // Defaults: a parameter that differs, the first metric they share.
  const differing = React.useMemo(() => differingColumns(runs).filter(c => c.startsWith('param:')).map(c => c.slice(6)), [runs]);
  const shared = React.useMemo(() => sharedMetricKeys(runs), [runs]);
  const [param, setParam] = React.useState(differing[0] ?? keys.params[0] ?? '');
  const [metric, setMetric] = React.useState(shared[0] ?? keys.metrics[0] ?? '');
  if (!keys.params.length || !keys.metrics.length) {
    return <p className="jp-InfinStor-hint">{trans.__('A scatter needs runs with parameters and metrics.')}</p>;
  }
  return (
    <div data-testid="infinstor-compare-scatter">
      <div className="jp-InfinStor-toolbar">
        <label>
          {trans.__('Parameter (x)')}{' '}
          <select className="jp-mod-styled" value={param} onChange={e => setParam(e.target.value)} data-testid="infinstor-scatter-param">
            {keys.params.map(k => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <label>
          {trans.__('Metric (y)')}{' '}
          <select className="jp-mod-styled" value={metric} onChange={e => setMetric(e.target.value)} data-testid="infinstor-scatter-metric">
            {keys.metrics.map(k => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ScatterChart runs={runs} names={props.names} colors={props.colors} param={param} metric={metric} />
      <Legend items={runs.map((_, i) => ({ label: props.names[i], color: props.colors[i] }))} />
    </div>
  );
}

function CompareTable(props: { runs: IRun[]; names: string[]; actions: IMlflowActions }): JSX.Element {
  const { runs, names, actions } = props;
  const trans = useTrans();
  const [onlyDiff, setOnlyDiff] = React.useState(false);
  const keys = React.useMemo(() => availableKeys(runs), [runs]);
  const now = Date.now();

  const param = (r: IRun, k: string) => r.data.params?.find(p => p.key === k)?.value;
  const metric = (r: IRun, k: string) => r.data.metrics?.find(m => m.key === k)?.value;
  const rowsFor = (list: string[], get: (r: IRun, k: string) => string | number | undefined, numeric: boolean) =>
    list
      .map(k => ({ k, values: runs.map(r => get(r, k)) }))
      .filter(row => !onlyDiff || valuesDiffer(row.values))
      .map(({ k, values }) => {
        const differ = valuesDiffer(values);
        const fmt = numeric ? numberFormatter(values) : (v: unknown) => String(v);
        return (
          <tr key={k} className={differ ? 'jp-InfinStor-diff' : undefined} data-differs={differ}>
            <th scope="row">
              {k}
              {differ && <span className="jp-InfinStor-srOnly"> {trans.__('(differs)')}</span>}
            </th>
            {values.map((v, i) => (
              <td key={i} className={numeric ? 'jp-InfinStor-number' : undefined}>
                {v === undefined ? '—' : fmt(v)}
              </td>
            ))}
          </tr>
        );
      });

  const head = (
    <thead>
      <tr>
        <th scope="col">
          <span className="jp-InfinStor-srOnly">{trans.__('Name')}</span>
        </th>
        {runs.map((r, i) => (
          <th key={r.info.run_id} scope="col">
            <button className="jp-InfinStor-linkButton" onClick={() => actions.openRun(r.info.run_id)} title={trans.__('Open run %1', names[i])}>
              {names[i]}
            </button>
          </th>
        ))}
      </tr>
    </thead>
  );

  return (
    <div className="jp-InfinStor-compareTables">
      <label className="jp-InfinStor-toolbar">
        <input type="checkbox" checked={onlyDiff} onChange={() => setOnlyDiff(!onlyDiff)} data-testid="infinstor-compare-only-diff" />{' '}
        {trans.__('Only differences')}
      </label>
      <table className="jp-InfinStor-table jp-InfinStor-compareTable" aria-label={trans.__('Runs')}>
        {head}
        <tbody>
          <tr>
            <th scope="row">{trans.__('Status')}</th>
            {runs.map(r => (
              <td key={r.info.run_id}>
                <StatusBadge status={r.info.status} showLabel trans={trans} />
              </td>
            ))}
          </tr>
          <tr>
            <th scope="row">{trans.__('Started')}</th>
            {runs.map(r => (
              <td key={r.info.run_id} title={formatIso(r.info.start_time)}>
                {formatRelative(r.info.start_time, now, trans)}
              </td>
            ))}
          </tr>
          <tr>
            <th scope="row">{trans.__('Duration')}</th>
            {runs.map(r => (
              <td key={r.info.run_id}>{formatDuration(runDuration(r, now), trans)}</td>
            ))}
          </tr>
        </tbody>
      </table>
      <h3 className="jp-InfinStor-sectionTitle">{trans.__('Parameters')}</h3>
      <table className="jp-InfinStor-table jp-InfinStor-compareTable" aria-label={trans.__('Parameters')} data-testid="infinstor-compare-params">
        {head}
        <tbody>{rowsFor(keys.params, param, false)}</tbody>
      </table>
      <h3 className="jp-InfinStor-sectionTitle">{trans.__('Metrics (latest)')}</h3>
      <table className="jp-InfinStor-table jp-InfinStor-compareTable" aria-label={trans.__('Metrics')} data-testid="infinstor-compare-metrics">
        {head}
        <tbody>{rowsFor(keys.metrics, metric, true)}</tbody>
      </table>
    </div>
  );
}
