/**
 * A run's page (main-area tab): an overview (experiment by name, source notebook, the job
 * that made it, parent and children by name, metrics and parameters at a glance, its logged
 * models and the registered versions made from it), its metric charts, artifacts and tags.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Button, launchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import {
  formatDuration,
  formatIso,
  formatMetric,
  formatRelative,
  formatTimestamp,
  isLabNotebookPath,
  NOTE_TAG,
  runDuration,
  runName,
  runSource,
  runUser,
  tagMap
} from '../mlflow/format';
import { IMetricPoint, IRun } from '../mlflow/types';
import { ArtifactBrowser } from '../mlflow/views/artifacts';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, StatusBadge, Tabs, useSignal, useTrans } from '../mlflow/views/common';
import { IChartSeries } from './chartData';
import { ChartControls, DEFAULT_CHART_SETTINGS, IChartSettings, MetricChart, useRunColors } from './charts';
import { registerModelDialog } from './register';
import { RunPageModel } from './runPageModel';
import { RunTags } from './RunTags';
import { useInView } from './hooks';

type PageTab = 'overview' | 'charts' | 'artifacts' | 'tags';

export function RunPage(props: { model: RunPageModel; actions: IMlflowActions; rendermime: IRenderMimeRegistry | null }): JSX.Element {
  const { model, actions } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const [tab, setTab] = React.useState<PageTab>('overview');
  const page = model.page;
  if (!page) {
    return (
      <div className="jp-InfinStor-detail" data-testid="infinstor-run-detail">
        {model.error ? (
          <ErrorState error={model.error} what={trans.__('Could not load the run.')} trans={trans} onRetry={() => void model.reload()} />
        ) : (
          <LoadingState label={trans.__('Loading the run…')} />
        )}
      </div>
    );
  }
  const run = page.run;
  const id = run.info.run_id;
  return (
    <div className="jp-InfinStor-detail jp-InfinStor-runPage" data-testid="infinstor-run-detail" data-run-id={id}>
      <header className="jp-InfinStor-detailHeader">
        <StatusBadge status={run.info.status} showLabel trans={trans} />
        <h2 className="jp-InfinStor-detailTitle" data-testid="infinstor-run-title">
          {runName(run)}
        </h2>
        <span className="jp-InfinStor-spacer" />
        <RefreshButton label={trans.__('Refresh run')} onClick={() => void model.reload()} />
        <Button
          small
          className="jp-mod-styled"
          data-testid="infinstor-register-model"
          onClick={() =>
            void registerModelDialog(model.client, run, trans, page.loggedModels).then(made => {
              if (made) {
                void model.reload();
              }
            })
          }
        >
          {trans.__('Register model…')}
        </Button>
        <Button
          small
          minimal
          className="jp-InfinStor-iconButton"
          title={trans.__('Open this run in MLflow UI')}
          aria-label={trans.__('Open this run in MLflow UI')}
          data-testid="infinstor-run-open-ui"
          onClick={() => actions.openUi(`#/experiments/${run.info.experiment_id}/runs/${id}`, runName(run))}
        >
          <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
      </header>
      {model.error && <ErrorState error={model.error} what={trans.__('Could not refresh the run.')} compact trans={trans} />}
      <Tabs<PageTab>
        label={trans.__('Run')}
        idPrefix={`infinstor-run-${id}`}
        current={tab}
        onChange={setTab}
        tabs={[
          { id: 'overview', label: trans.__('Overview') },
          { id: 'charts', label: trans.__('Charts (%1)', run.data.metrics?.length ?? 0) },
          { id: 'artifacts', label: trans.__('Artifacts') },
          { id: 'tags', label: trans.__('Tags (%1)', run.data.tags?.length ?? 0) }
        ]}
      />
      <div className="jp-InfinStor-detailBody" role="tabpanel" id={`infinstor-run-${id}-panel-${tab}`} aria-labelledby={`infinstor-run-${id}-tab-${tab}`}>
        {tab === 'overview' && <Overview model={model} actions={actions} onCharts={() => setTab('charts')} />}
        {tab === 'charts' && <RunCharts model={model} run={run} />}
        {tab === 'artifacts' && <ArtifactBrowser client={model.client} runId={id} rendermime={props.rendermime} />}
        {tab === 'tags' && <RunTags model={model} run={run} />}
      </div>
    </div>
  );
}

function RunLink(props: { run: IRun; actions: IMlflowActions }): JSX.Element {
  const trans = useTrans();
  const name = runName(props.run);
  return (
    <button className="jp-InfinStor-linkButton jp-InfinStor-runLink" onClick={() => props.actions.openRun(props.run.info.run_id)} title={trans.__('Open run %1', name)}>
      <StatusBadge status={props.run.info.status} trans={trans} /> {name}
    </button>
  );
}

function Overview(props: { model: RunPageModel; actions: IMlflowActions; onCharts: () => void }): JSX.Element {
  const { model, actions } = props;
  const trans = useTrans();
  const page = model.page!;
  const { run, experiment, parent, children, loggedModels, versions } = page;
  const tags = tagMap(run.data.tags);
  const source = runSource(run);
  const jobId = model.jobId;
  const now = Date.now();
  const metrics = (run.data.metrics ?? []).slice().sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true }));
  const params = (run.data.params ?? []).slice().sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true }));
  const [paramFilter, setParamFilter] = React.useState('');
  const shownParams = paramFilter ? params.filter(p => `${p.key} ${p.value}`.toLowerCase().includes(paramFilter.toLowerCase())) : params;
  const experimentName = experiment?.name ?? run.info.experiment_id;

  return (
    <div className="jp-InfinStor-runOverview" data-testid="infinstor-run-overview">
      <dl className="jp-InfinStor-fields jp-InfinStor-facts">
        <dt>{trans.__('Experiment')}</dt>
        <dd>
          <button
            className="jp-InfinStor-linkButton"
            data-testid="infinstor-run-experiment"
            title={trans.__('Open the runs of %1', experimentName)}
            onClick={() => actions.openRuns(run.info.experiment_id, experiment?.name)}
          >
            {experimentName}
          </button>
        </dd>
        <dt>{trans.__('Status')}</dt>
        <dd>
          <StatusBadge status={run.info.status} showLabel trans={trans} />
        </dd>
        <dt>{trans.__('Started')}</dt>
        <dd title={formatIso(run.info.start_time)}>
          {formatRelative(run.info.start_time, now, trans)} <span className="jp-InfinStor-hint">{formatTimestamp(run.info.start_time)}</span>
        </dd>
        <dt>{trans.__('Duration')}</dt>
        <dd>{formatDuration(runDuration(run, now), trans)}</dd>
        <dt>{trans.__('User')}</dt>
        <dd>{runUser(run) || '—'}</dd>
        <dt>{trans.__('Source')}</dt>
        <dd>
          {source && isLabNotebookPath(source) ? (
            <button
              className="jp-InfinStor-linkButton"
              onClick={() => actions.openNotebook(source)}
              title={trans.__('Open %1', source)}
              data-testid="infinstor-detail-source"
            >
              {source}
            </button>
          ) : (
            <span data-testid="infinstor-detail-source">{source || '—'}</span>
          )}
          {tags['mlflow.source.git.commit'] && <span className="jp-InfinStor-hint"> @ {tags['mlflow.source.git.commit'].slice(0, 8)}</span>}
        </dd>
        {jobId && (
          <>
            <dt>{trans.__('Job')}</dt>
            <dd>
              {actions.openJob ? (
                <button
                  className="jp-InfinStor-linkButton"
                  data-testid="infinstor-run-job"
                  title={trans.__('Show job %1 and its log in the Jobs view', jobId)}
                  onClick={() => actions.openJob?.(jobId)}
                >
                  {trans.__('Job %1 (show its log)', jobId.slice(0, 12))}
                </button>
              ) : (
                // No Jobs view in this lab (the jobs plugin is off): the job's id only.
                <span data-testid="infinstor-run-job">{jobId}</span>
              )}
            </dd>
          </>
        )}
        <dt>{trans.__('Parent run')}</dt>
        <dd data-testid="infinstor-parent-run">{parent ? <RunLink run={parent} actions={actions} /> : '—'}</dd>
        <dt>{trans.__('Child runs')}</dt>
        <dd className="jp-InfinStor-childRuns" data-testid="infinstor-child-runs">
          {children.length ? children.map(c => <RunLink key={c.info.run_id} run={c} actions={actions} />) : '—'}
        </dd>
        <dt>{trans.__('Run ID')}</dt>
        <dd className="jp-InfinStor-mono">{run.info.run_id}</dd>
      </dl>
      {tags[NOTE_TAG] && <p className="jp-InfinStor-description">{tags[NOTE_TAG]}</p>}
      <div className="jp-InfinStor-cards">
        <section className="jp-InfinStor-card" aria-labelledby={`${run.info.run_id}-metrics`} data-testid="infinstor-run-metrics-summary">
          <h3 className="jp-InfinStor-sectionTitle" id={`${run.info.run_id}-metrics`}>
            {trans.__('Metrics (%1)', metrics.length)}
          </h3>
          {metrics.length ? (
            <table className="jp-InfinStor-table jp-InfinStor-kvTable" aria-label={trans.__('Metrics')}>
              <thead>
                <tr>
                  <th scope="col">{trans.__('Metric')}</th>
                  <th scope="col">{trans.__('Latest')}</th>
                  <th scope="col">{trans.__('Step')}</th>
                </tr>
              </thead>
              <tbody>
                {metrics.map(m => (
                  <tr key={m.key}>
                    <th scope="row">
                      <button className="jp-InfinStor-linkButton" title={trans.__('Show the charts')} onClick={props.onCharts}>
                        {m.key}
                      </button>
                    </th>
                    <td className="jp-InfinStor-number" title={String(m.value)} data-testid="infinstor-metric-latest">
                      {formatMetric(m.value)}
                    </td>
                    <td className="jp-InfinStor-number">{m.step ?? 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="jp-InfinStor-hint">{trans.__('No metrics logged.')}</p>
          )}
        </section>
        <section className="jp-InfinStor-card" aria-labelledby={`${run.info.run_id}-params`} data-testid="infinstor-run-params-summary">
          <h3 className="jp-InfinStor-sectionTitle" id={`${run.info.run_id}-params`}>
            {trans.__('Parameters (%1)', params.length)}
          </h3>
          {params.length > 12 && (
            <input
              type="search"
              className="jp-InfinStor-input"
              placeholder={trans.__('Find a parameter')}
              aria-label={trans.__('Find a parameter')}
              value={paramFilter}
              onChange={e => setParamFilter(e.target.value)}
            />
          )}
          {params.length ? (
            <table className="jp-InfinStor-table jp-InfinStor-kvTable" aria-label={trans.__('Parameters')}>
              <tbody>
                {shownParams.map(p => (
                  <tr key={p.key}>
                    <th scope="row">{p.key}</th>
                    <td className="jp-InfinStor-paramValue" title={p.value}>
                      {p.value}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="jp-InfinStor-hint">{trans.__('No parameters logged.')}</p>
          )}
        </section>
        <section className="jp-InfinStor-card" data-testid="infinstor-run-logged-models">
          <h3 className="jp-InfinStor-sectionTitle">{trans.__('Logged models (%1)', loggedModels.length)}</h3>
          {loggedModels.length ? (
            <ul className="jp-InfinStor-plainList">
              {loggedModels.map(m => {
                const registered = versions.filter(v => v.model_id && v.model_id === m.info.model_id);
                return (
                  <li key={m.info.model_id} data-testid="infinstor-logged-model">
                    <span className="jp-InfinStor-modelName">{m.info.name ?? m.info.model_id}</span>{' '}
                    <span className="jp-InfinStor-hint jp-InfinStor-mono">{m.info.model_id}</span>
                    {m.info.status && <span className="jp-InfinStor-chip">{modelStatus(m.info.status, trans)}</span>}
                    {registered.map(v => (
                      <span key={`${v.name}/${v.version}`} className="jp-InfinStor-chip">
                        {trans.__('registered as %1 v%2', v.name, v.version)}
                      </span>
                    ))}
                  </li>
                );
              })}
            </ul>
          ) : (
            <p className="jp-InfinStor-hint">{trans.__('This run logged no model (mlflow.<flavor>.log_model logs one).')}</p>
          )}
        </section>
        <section className="jp-InfinStor-card" data-testid="infinstor-run-model-versions">
          <h3 className="jp-InfinStor-sectionTitle">{trans.__('Registered versions (%1)', versions.length)}</h3>
          {versions.length ? (
            <ul className="jp-InfinStor-plainList">
              {versions.map(v => (
                <li key={`${v.name}/${v.version}`} data-testid="infinstor-run-model-version">
                  <button
                    className="jp-InfinStor-linkButton"
                    title={trans.__('Open %1 version %2 in MLflow UI', v.name, v.version)}
                    onClick={() => actions.openUi(`#/models/${encodeURIComponent(v.name)}/versions/${v.version}`, `${v.name} v${v.version}`)}
                  >
                    {trans.__('%1 version %2', v.name, v.version)}
                  </button>
                  {(v.aliases ?? []).map(a => (
                    <span key={a} className="jp-InfinStor-chip jp-InfinStor-alias">
                      @{a}
                    </span>
                  ))}
                  {v.status && v.status !== 'READY' && <span className="jp-InfinStor-chip">{v.status}</span>}
                </li>
              ))}
            </ul>
          ) : (
            <p className="jp-InfinStor-hint">{trans.__('No registered model version was made from this run.')}</p>
          )}
        </section>
      </div>
    </div>
  );
}

function modelStatus(status: string, trans: ReturnType<typeof useTrans>): string {
  switch (status) {
    case 'LOGGED_MODEL_READY':
      return trans.__('ready');
    case 'LOGGED_MODEL_PENDING':
      return trans.__('pending');
    case 'LOGGED_MODEL_UPLOAD_FAILED':
      return trans.__('upload failed');
    default:
      return status.toLowerCase();
  }
}

/** Load a run's metric histories when the chart comes into view (null until those of `keys` came). */
function useHistories(model: RunPageModel, keys: string[], inView: boolean): { points: IMetricPoint[][] | null; error: unknown } {
  const [state, setState] = React.useState<{ for: string; points: IMetricPoint[][] | null; error: unknown }>({
    for: '',
    points: null,
    error: null
  });
  const run = model.run;
  const wanted = keys.join('\u0000');
  const signature = keys
    .map(k => {
      const m = run?.data.metrics?.find(x => x.key === k);
      return `${k}:${m?.step}:${m?.value}`;
    })
    .join('|');
  React.useEffect(() => {
    if (!inView) {
      return;
    }
    let cancelled = false;
    Promise.all(keys.map(k => model.history(k))).then(
      points => !cancelled && setState({ for: wanted, points, error: null }),
      error => !cancelled && setState({ for: wanted, points: null, error })
    );
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [model, signature, inView]);
  // What was loaded for other keys (the overlay changed) is not shown for these.
  return state.for === wanted ? state : { points: null, error: null };
}

function HistoryChart(props: { model: RunPageModel; keys: string[]; colors: string[]; settings: IChartSettings; title: string; testid?: string }): JSX.Element {
  const trans = useTrans();
  const [ref, inView] = useInView<HTMLDivElement>();
  const { points, error } = useHistories(props.model, props.keys, inView);
  const series = React.useMemo<IChartSeries[] | null>(
    () => points && props.keys.map((k, i) => ({ label: k, color: props.colors[i % props.colors.length], points: points[i] })),
    [points, props.keys.join('\u0000'), props.colors]
  );
  return (
    <div ref={ref} className="jp-InfinStor-chartSlot" data-testid={props.testid}>
      {error ? (
        <ErrorState error={error} what={trans.__('Could not load the history of %1.', props.title)} compact trans={trans} />
      ) : !series ? (
        <LoadingState label={trans.__('Loading %1…', props.title)} />
      ) : (
        <MetricChart title={props.title} series={series} settings={props.settings} legend={props.keys.length > 1} />
      )}
    </div>
  );
}

function RunCharts(props: { model: RunPageModel; run: IRun }): JSX.Element {
  const { model, run } = props;
  const trans = useTrans();
  const [settings, setSettings] = React.useState<IChartSettings>(DEFAULT_CHART_SETTINGS);
  const [overlay, setOverlay] = React.useState<string[]>([]);
  const keys = React.useMemo(
    () => (run.data.metrics ?? []).map(m => m.key).sort((a, b) => a.localeCompare(b, undefined, { numeric: true })),
    [run.data.metrics]
  );
  const colors = useRunColors(Math.max(1, keys.length));
  if (!keys.length) {
    return <EmptyState title={trans.__('No metrics logged.')} hint={trans.__('Log some with mlflow.log_metric().')} />;
  }
  return (
    <div className="jp-InfinStor-metrics" data-testid="infinstor-run-metrics">
      <ChartControls settings={settings} onChange={setSettings} idPrefix={`run-${run.info.run_id}`} />
      <fieldset className="jp-InfinStor-overlayPicker">
        <legend>{trans.__('Plot together')}</legend>
        {keys.map(k => (
          <label key={k}>
            <input
              type="checkbox"
              aria-label={trans.__('Plot %1 on the combined chart', k)}
              checked={overlay.includes(k)}
              onChange={() => setOverlay(o => (o.includes(k) ? o.filter(x => x !== k) : [...o, k]))}
            />{' '}
            {k}
          </label>
        ))}
      </fieldset>
      {overlay.length > 0 && (
        <HistoryChart
          model={model}
          keys={overlay}
          colors={overlay.map(k => colors[keys.indexOf(k)])}
          settings={settings}
          title={overlay.join(', ')}
          testid="infinstor-combined-chart"
        />
      )}
      <div className="jp-InfinStor-chartGrid" data-testid="infinstor-metric-charts">
        {keys.map((k, i) => (
          <HistoryChart key={k} model={model} keys={[k]} colors={[colors[i]]} settings={settings} title={k} />
        ))}
      </div>
    </div>
  );
}
