import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Button, launchIcon, ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import {
  formatDuration,
  formatMetric,
  formatTimestamp,
  isLabNotebookPath,
  runDuration,
  runName,
  runSource,
  runUser,
  tagMap
} from '../format';
import { RunDetailModel } from '../models';
import { IMetricPoint, IRun } from '../types';
import { IChartSeries, MetricChart, XAxis } from './chart';
import { ArtifactBrowser } from './artifacts';
import { EmptyState, ErrorState, IMlflowActions, LoadingState, RefreshButton, StatusBadge, Tabs, useSignal } from './common';
import { showRefusal } from './experiments';

type DetailTab = 'overview' | 'params' | 'metrics' | 'tags' | 'artifacts';

/**
 * Run detail (main-area tab body).
 */
export function RunDetail(props: {
  model: RunDetailModel;
  actions: IMlflowActions;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const { model, actions } = props;
  useSignal(model.changed);
  const [tab, setTab] = React.useState<DetailTab>('overview');
  const run = model.run;
  if (!run) {
    return (
      <div className="jp-InfinStor-detail" data-testid="infinstor-run-detail">
        {model.error ? (
          <ErrorState error={model.error} what="Could not load the run." onRetry={() => void model.refresh()} />
        ) : (
          <LoadingState label="Loading the run…" />
        )}
      </div>
    );
  }
  return (
    <div className="jp-InfinStor-detail" data-testid="infinstor-run-detail" data-run-id={run.info.run_id}>
      <header className="jp-InfinStor-detailHeader">
        <StatusBadge status={run.info.status} showLabel />
        <h2 className="jp-InfinStor-detailTitle" data-testid="infinstor-run-title">
          {runName(run)}
        </h2>
        <span className="jp-InfinStor-spacer" />
        <RefreshButton label="Refresh run" onClick={() => void model.refresh()} />
        <Button
          small
          className="jp-mod-styled"
          data-testid="infinstor-register-model"
          onClick={() => void registerModelDialog(model, run)}
        >
          Register model…
        </Button>
        <Button
          small
          minimal
          className="jp-InfinStor-iconButton"
          title="Open this run in MLflow UI"
          aria-label="Open this run in MLflow UI"
          data-testid="infinstor-run-open-ui"
          onClick={() => actions.openUi(`#/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`, runName(run))}
        >
          <launchIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
      </header>
      {model.error && <ErrorState error={model.error} what="Could not refresh the run." compact />}
      <Tabs<DetailTab>
        label="Run detail"
        idPrefix={`infinstor-run-${run.info.run_id}`}
        current={tab}
        onChange={setTab}
        tabs={[
          { id: 'overview', label: 'Overview' },
          { id: 'params', label: `Parameters (${run.data.params?.length ?? 0})` },
          { id: 'metrics', label: `Metrics (${run.data.metrics?.length ?? 0})` },
          { id: 'tags', label: 'Tags' },
          { id: 'artifacts', label: 'Artifacts' }
        ]}
      />
      <div
        className="jp-InfinStor-detailBody"
        role="tabpanel"
        id={`infinstor-run-${run.info.run_id}-panel-${tab}`}
        aria-labelledby={`infinstor-run-${run.info.run_id}-tab-${tab}`}
      >
        {tab === 'overview' && <Overview model={model} run={run} actions={actions} />}
        {tab === 'params' && <KeyValueTable label="Parameters" rows={(run.data.params ?? []).map(p => [p.key, p.value])} />}
        {tab === 'metrics' && <Metrics model={model} run={run} />}
        {tab === 'tags' && <Tags model={model} run={run} />}
        {tab === 'artifacts' && <ArtifactBrowser client={model.client} runId={run.info.run_id} rendermime={props.rendermime} />}
      </div>
    </div>
  );
}

function Overview(props: { model: RunDetailModel; run: IRun; actions: IMlflowActions }): JSX.Element {
  const { run, model, actions } = props;
  const source = runSource(run);
  const tags = tagMap(run.data.tags);
  const runLink = (r: IRun) => (
    <button key={r.info.run_id} className="jp-InfinStor-linkButton" onClick={() => actions.openRun(r.info.run_id)} title={`Open run ${runName(r)}`}>
      <StatusBadge status={r.info.status} /> {runName(r)}
    </button>
  );
  return (
    <dl className="jp-InfinStor-fields jp-InfinStor-overview" data-testid="infinstor-run-overview">
      <dt>Status</dt>
      <dd>
        <StatusBadge status={run.info.status} showLabel />
      </dd>
      <dt>Run ID</dt>
      <dd className="jp-InfinStor-mono">{run.info.run_id}</dd>
      <dt>Experiment</dt>
      <dd>
        <button
          className="jp-InfinStor-linkButton"
          onClick={() => actions.openUi(`#/experiments/${run.info.experiment_id}/runs`, `experiment ${run.info.experiment_id}`)}
        >
          {run.info.experiment_id}
        </button>
      </dd>
      <dt>Started</dt>
      <dd>{formatTimestamp(run.info.start_time)}</dd>
      <dt>Ended</dt>
      <dd>{run.info.end_time ? formatTimestamp(run.info.end_time) : '—'}</dd>
      <dt>Duration</dt>
      <dd>{formatDuration(runDuration(run))}</dd>
      <dt>User</dt>
      <dd>{runUser(run) || '—'}</dd>
      <dt>Source</dt>
      <dd>
        {source && isLabNotebookPath(source) ? (
          <button className="jp-InfinStor-linkButton" onClick={() => actions.openNotebook(source)} data-testid="infinstor-detail-source">
            {source}
          </button>
        ) : (
          source || '—'
        )}
        {tags['mlflow.source.git.commit'] && <span className="jp-InfinStor-hint"> @ {tags['mlflow.source.git.commit'].slice(0, 8)}</span>}
      </dd>
      <dt>Parent run</dt>
      <dd>{model.parent ? runLink(model.parent) : '—'}</dd>
      <dt>Child runs</dt>
      <dd className="jp-InfinStor-childRuns" data-testid="infinstor-child-runs">
        {model.children.length ? model.children.map(runLink) : '—'}
      </dd>
      {tags['mlflow.note.content'] && (
        <>
          <dt>Description</dt>
          <dd className="jp-InfinStor-description">{tags['mlflow.note.content']}</dd>
        </>
      )}
      <dt>Artifact location</dt>
      <dd className="jp-InfinStor-mono">{run.info.artifact_uri}</dd>
    </dl>
  );
}

function KeyValueTable(props: { label: string; rows: Array<[string, React.ReactNode]> }): JSX.Element {
  if (!props.rows.length) {
    return <EmptyState title={`No ${props.label.toLowerCase()}.`} />;
  }
  return (
    <table className="jp-InfinStor-table jp-InfinStor-kvTable" aria-label={props.label}>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {props.rows
          .slice()
          .sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }))
          .map(([k, v]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{v}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

/**
 * Load several histories; keyed by the joined keys.
 */
function useHistories(model: RunDetailModel, keys: string[], version: number) {
  const [state, setState] = React.useState<{ series: IChartSeries[] | null; error: unknown }>({ series: null, error: null });
  const joined = keys.join('\u0000');
  React.useEffect(() => {
    let cancelled = false;
    setState(s => ({ series: s.series, error: null }));
    Promise.all(keys.map(k => model.history(k, version > 0).then((points: IMetricPoint[]) => ({ label: k, points })))).then(
      series => !cancelled && setState({ series, error: null }),
      error => !cancelled && setState({ series: null, error })
    );
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [model, joined, version]);
  return state;
}

function HistoryChart(props: { model: RunDetailModel; keys: string[]; xAxis: XAxis; title: string; version: number }): JSX.Element {
  const { series, error } = useHistories(props.model, props.keys, props.version);
  if (error) {
    return <ErrorState error={error} what={`Could not load the history of ${props.title}.`} compact />;
  }
  if (!series) {
    return <LoadingState label={`Loading ${props.title}…`} />;
  }
  return <MetricChart series={series} xAxis={props.xAxis} title={props.title} />;
}

function Metrics(props: { model: RunDetailModel; run: IRun }): JSX.Element {
  const { model, run } = props;
  const metrics = (run.data.metrics ?? []).slice().sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true }));
  const [xAxis, setXAxis] = React.useState<XAxis>('step');
  const [combined, setCombined] = React.useState<string[]>([]);
  const [showAll, setShowAll] = React.useState(false);
  // Reload histories when the latest values change (running runs).
  const signature = metrics.map(m => `${m.key}:${m.step}:${m.value}`).join('|');
  const [version, setVersion] = React.useState(0);
  const first = React.useRef(true);
  React.useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    setVersion(v => v + 1);
  }, [signature]);

  if (!metrics.length) {
    return <EmptyState title="No metrics logged." hint="Log some with mlflow.log_metric()." />;
  }
  const shown = showAll ? metrics : metrics.slice(0, 12);
  return (
    <div className="jp-InfinStor-metrics" data-testid="infinstor-run-metrics">
      <table className="jp-InfinStor-table" aria-label="Metrics">
        <thead>
          <tr>
            <th scope="col">
              <span className="jp-InfinStor-srOnly">Plot together</span>
            </th>
            <th scope="col">Metric</th>
            <th scope="col">Latest</th>
            <th scope="col">Step</th>
            <th scope="col">Logged</th>
          </tr>
        </thead>
        <tbody>
          {metrics.map(m => (
            <tr key={m.key}>
              <td>
                <input
                  type="checkbox"
                  aria-label={`Plot ${m.key} on the combined chart`}
                  checked={combined.includes(m.key)}
                  onChange={() => setCombined(c => (c.includes(m.key) ? c.filter(k => k !== m.key) : [...c, m.key]))}
                />
              </td>
              <th scope="row">{m.key}</th>
              <td data-testid="infinstor-metric-latest">{formatMetric(m.value)}</td>
              <td>{m.step ?? 0}</td>
              <td>{formatTimestamp(m.timestamp)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="jp-InfinStor-toolbar" role="radiogroup" aria-label="X axis">
        <span>X axis:</span>
        {(['step', 'time'] as const).map(x => (
          <label key={x}>
            <input type="radio" name={`xaxis-${run.info.run_id}`} checked={xAxis === x} onChange={() => setXAxis(x)} /> {x === 'step' ? 'Step' : 'Time'}
          </label>
        ))}
        <span className="jp-InfinStor-hint">Tick metrics above to plot them on one chart.</span>
      </div>
      {combined.length > 0 && (
        <div data-testid="infinstor-combined-chart">
          <HistoryChart model={model} keys={combined} xAxis={xAxis} title={combined.join(', ')} version={version} />
        </div>
      )}
      <div className="jp-InfinStor-chartGrid" data-testid="infinstor-metric-charts">
        {shown.map(m => (
          <HistoryChart key={m.key} model={model} keys={[m.key]} xAxis={xAxis} title={m.key} version={version} />
        ))}
      </div>
      {metrics.length > shown.length && (
        <Button small className="jp-mod-styled" onClick={() => setShowAll(true)}>
          Show all {metrics.length} charts
        </Button>
      )}
    </div>
  );
}

function Tags(props: { model: RunDetailModel; run: IRun }): JSX.Element {
  const { model, run } = props;
  const [key, setKey] = React.useState('');
  const [value, setValue] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const tags = (run.data.tags ?? []).slice().sort((a, b) => Number(a.key.startsWith('mlflow.')) - Number(b.key.startsWith('mlflow.')) || a.key.localeCompare(b.key));
  const act = async (what: string, fn: () => Promise<void>) => {
    setBusy(true);
    try {
      await fn();
    } catch (error) {
      await showRefusal(what, error);
    } finally {
      setBusy(false);
    }
  };
  const edit = async (k: string, current: string) => {
    const result = await showDialog<string>({
      title: `Edit tag ${k}`,
      body: new TagValueBody(current),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Save' })]
    });
    if (result.button.accept && result.value !== null && result.value !== current) {
      await act('Could not set the tag', () => model.setTag(k, result.value!));
    }
  };
  return (
    <div className="jp-InfinStor-tags" data-testid="infinstor-run-tags">
      <table className="jp-InfinStor-table jp-InfinStor-kvTable" aria-label="Tags">
        <thead>
          <tr>
            <th scope="col">Tag</th>
            <th scope="col">Value</th>
            <th scope="col">
              <span className="jp-InfinStor-srOnly">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tags.map(t => {
            const system = t.key.startsWith('mlflow.');
            return (
              <tr key={t.key} data-testid="infinstor-tag" data-key={t.key}>
                <th scope="row">{t.key}</th>
                <td className="jp-InfinStor-tagValue">{t.value}</td>
                <td className="jp-InfinStor-rowActions">
                  {system ? (
                    <span className="jp-InfinStor-hint" title="MLflow system tags are set by MLflow">
                      system
                    </span>
                  ) : (
                    <>
                      <Button small minimal disabled={busy} aria-label={`Edit tag ${t.key}`} onClick={() => void edit(t.key, t.value)}>
                        Edit
                      </Button>
                      <Button
                        small
                        minimal
                        disabled={busy}
                        aria-label={`Delete tag ${t.key}`}
                        onClick={() => void act('Could not delete the tag', () => model.deleteTag(t.key))}
                      >
                        Delete
                      </Button>
                    </>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form
        className="jp-InfinStor-toolbar"
        aria-label="Add a tag"
        onSubmit={e => {
          e.preventDefault();
          if (!key.trim()) {
            return;
          }
          void act('Could not set the tag', async () => {
            await model.setTag(key.trim(), value);
            setKey('');
            setValue('');
          });
        }}
      >
        <input className="jp-InfinStor-input" aria-label="New tag name" placeholder="tag" value={key} data-testid="infinstor-tag-key" onChange={e => setKey(e.target.value)} />
        <input className="jp-InfinStor-input" aria-label="New tag value" placeholder="value" value={value} data-testid="infinstor-tag-value" onChange={e => setValue(e.target.value)} />
        <Button type="submit" small className="jp-mod-styled" disabled={busy || !key.trim()} data-testid="infinstor-tag-add">
          Add tag
        </Button>
      </form>
    </div>
  );
}

class TagValueBody extends ReactWidget implements Dialog.IBodyWidget<string> {
  constructor(private _value: string) {
    super();
  }
  getValue(): string {
    return this._value;
  }
  protected render(): JSX.Element {
    return (
      <label className="jp-InfinStor-dialogField">
        Value
        <textarea className="jp-mod-styled" defaultValue={this._value} rows={3} onChange={e => (this._value = e.target.value)} autoFocus />
      </label>
    );
  }
}

// -- register a logged model ------------------------------------------------------------------------

interface IModelSource {
  label: string;
  source: string;
  modelId?: string;
}

interface IRegisterValue {
  source: IModelSource | null;
  name: string;
}

class RegisterBody extends ReactWidget implements Dialog.IBodyWidget<IRegisterValue> {
  constructor(private _sources: IModelSource[], private _names: string[], name: string) {
    super();
    this._value = { source: _sources[0] ?? null, name };
  }
  getValue(): IRegisterValue {
    return this._value;
  }
  protected render(): JSX.Element {
    return (
      <div className="jp-InfinStor-registerForm" data-testid="infinstor-register-form">
        <label className="jp-InfinStor-dialogField">
          Logged model
          <select
            className="jp-mod-styled"
            defaultValue="0"
            onChange={e => (this._value = { ...this._value, source: this._sources[Number(e.target.value)] ?? null })}
          >
            {this._sources.map((s, i) => (
              <option key={i} value={i}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <label className="jp-InfinStor-dialogField">
          Registered model name (new or existing)
          <input
            className="jp-mod-styled"
            list="infinstor-registered-names"
            defaultValue={this._value.name}
            data-testid="infinstor-register-name"
            onChange={e => (this._value = { ...this._value, name: e.target.value })}
          />
          <datalist id="infinstor-registered-names">
            {this._names.map(n => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </label>
      </div>
    );
  }
  private _value: IRegisterValue;
}

/**
 * Logged models of a run: MLflow 3 logged models (logged-models/search) and
 * MLmodel folders among the run's top-level artifacts.
 */
export async function findModelSources(model: RunDetailModel, run: IRun): Promise<IModelSource[]> {
  const client = model.client;
  const sources: IModelSource[] = [];
  const logged = await client.searchLoggedModels(run.info.experiment_id, run.info.run_id).catch(() => []);
  for (const m of logged) {
    sources.push({
      label: `${m.info.name ?? 'model'} (${m.info.model_id})`,
      source: `models:/${m.info.model_id}`,
      modelId: m.info.model_id
    });
  }
  const top = await client.listArtifacts(run.info.run_id).catch(() => []);
  for (const dir of top.filter(f => f.is_dir)) {
    const files = await client.listArtifacts(run.info.run_id, dir.path).catch(() => []);
    if (files.some(f => f.path.endsWith('/MLmodel') || f.path === 'MLmodel')) {
      sources.push({ label: `artifacts/${dir.path}`, source: `${run.info.artifact_uri}/${dir.path}` });
    }
  }
  return sources;
}

async function registerModelDialog(model: RunDetailModel, run: IRun): Promise<void> {
  const sources = await findModelSources(model, run);
  if (!sources.length) {
    await showDialog({
      title: 'Register model',
      body: 'This run has no logged model. Log one with mlflow.<flavor>.log_model(), then register it here.',
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    return;
  }
  const names = await model.client
    .searchRegisteredModels({ maxResults: 500 })
    .then(p => p.items.map(m => m.name))
    .catch(() => [] as string[]);
  const result = await showDialog<IRegisterValue>({
    title: `Register a model from ${runName(run)}`,
    body: new RegisterBody(sources, names, runName(run)),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Register' })]
  });
  const value = result.value;
  if (!result.button.accept || !value || !value.source || !value.name.trim()) {
    return;
  }
  try {
    await model.client.createRegisteredModel(value.name.trim());
    const version = await model.client.createModelVersion({
      name: value.name.trim(),
      source: value.source.source,
      runId: run.info.run_id,
      modelId: value.source.modelId
    });
    Notification.success(`Registered ${version.name} version ${version.version}.`, { autoClose: 5000 });
  } catch (error) {
    await showRefusal('Could not register the model', error);
  }
}
