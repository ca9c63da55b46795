import { TranslationBundle } from '@jupyterlab/translation';
import { Button, UseSignal } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import {
  Confirm,
  PollingListView,
  PollingPanel,
  translationBundle,
  useTicker
} from '../common/PollingPanel';
import { CellProgress } from './CellProgress';
import { jobsIcon } from './icons';
import { JobLogModel, JobsModel } from './model';
import { JobProgressModel } from './progress';
import { IJob, isActive, isEnded } from './types';
import { formatDuration, jobDuration, jobTitle, statusKind } from './format';

/** Id of the Jobs view widget. */
export const JOBS_PANEL_ID = 'infinstor-jobs';

/** What the Jobs view asks the application to do. */
export interface IJobActions {
  openRun(job: IJob): void | Promise<void>;
  rerun(job: IJob): void | Promise<void>;
}

function formatTimestamp(seconds: number | null | undefined): string {
  if (!seconds) {
    return '–';
  }
  return new Date(seconds * 1000).toLocaleString();
}

function formatValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function StatusBadge(props: { status: string }): JSX.Element {
  const kind = statusKind(props.status);
  return (
    <span
      className={`jp-InfinStor-badge jp-InfinStor-badge-${kind}`}
      data-testid="infinstor-job-status"
      data-status={props.status}
    >
      {props.status}
    </span>
  );
}

/**
 * Props of {@link JobsView}.
 */
export interface IJobsViewProps {
  model: JobsModel;
  panel: JobsPanel;
  actions: IJobActions;
  confirm: Confirm;
  trans: TranslationBundle;
}

/**
 * The Jobs view: the job list, and the selected job with its live log tail.
 */
export function JobsView(props: IJobsViewProps): JSX.Element {
  const { model, panel, trans } = props;
  const jobs = model.jobs;
  const selected = panel.selectedId ? model.find(panel.selectedId) ?? null : null;
  const now = useTicker(panel.isVisible && jobs.some(j => j.status === 'RUNNING'));
  const [busy, setBusy] = React.useState<string | null>(null);
  const [actionError, setActionError] = React.useState<string | null>(null);

  const run = async (label: string, fn: () => Promise<unknown>) => {
    setBusy(label);
    setActionError(null);
    try {
      await fn();
    } catch (error) {
      setActionError(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(null);
    }
  };

  const onKeyDown = (event: React.KeyboardEvent) => {
    if (!jobs.length) {
      return;
    }
    const index = selected ? jobs.findIndex(j => j.id === selected.id) : -1;
    let next = index;
    switch (event.key) {
      case 'ArrowDown':
        next = Math.min(jobs.length - 1, index + 1);
        break;
      case 'ArrowUp':
        next = Math.max(0, index - 1);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = jobs.length - 1;
        break;
      default:
        return;
    }
    event.preventDefault();
    panel.selectJob(jobs[next].id);
    document.getElementById(`infinstor-job-${jobs[next].id}`)?.scrollIntoView({ block: 'nearest' });
  };

  const body =
    jobs.length === 0 ? (
      <p className="jp-InfinStor-hint jp-InfinStor-jobsEmpty" data-testid="infinstor-jobs-empty">
        {trans.__(
          'No jobs yet. Right-click a notebook in the file browser and choose “Run as MLflow job…”.'
        )}
      </p>
    ) : (
      <ul
        className="jp-InfinStor-jobList"
        role="listbox"
        tabIndex={0}
        aria-label={trans.__('Jobs')}
        aria-activedescendant={selected ? `infinstor-job-${selected.id}` : undefined}
        data-testid="infinstor-job-list"
        onKeyDown={onKeyDown}
      >
        {jobs.map(job => (
          <li
            key={job.id}
            id={`infinstor-job-${job.id}`}
            role="option"
            aria-selected={selected?.id === job.id}
            className={`jp-InfinStor-jobRow${selected?.id === job.id ? ' jp-mod-selected' : ''}`}
            data-testid="infinstor-job-row"
            data-job-id={job.id}
            data-status={job.status}
            title={job.path}
            onClick={() => panel.selectJob(job.id)}
          >
            <div className="jp-InfinStor-jobRowMain">
              <StatusBadge status={job.status} />
              <span className="jp-InfinStor-jobName" data-testid="infinstor-job-name">
                {jobTitle(job)}
              </span>
              <span className="jp-InfinStor-jobDuration" data-testid="infinstor-job-duration">
                {formatDuration(jobDuration(job, model.fetchedAt, now))}
              </span>
            </div>
            <div className="jp-InfinStor-jobRowSub">
              <span className="jp-InfinStor-jobTarget" data-testid="infinstor-job-target">
                {job.target}
              </span>
              <span className="jp-InfinStor-jobPath" data-testid="infinstor-job-path">
                {job.path}
              </span>
            </div>
          </li>
        ))}
      </ul>
    );

  return (
    <PollingListView
      model={model}
      className="jp-InfinStor-jobs"
      icon={jobsIcon}
      title={trans.__('MLflow jobs')}
      refreshLabel={trans.__('Refresh jobs')}
      testIdPrefix="infinstor-jobs"
      describeError={error => trans.__('Could not list the jobs: %1', error.message)}
      loadingText={trans.__('Loading jobs…')}
      body={body}
    >
      {selected && (
        <section
          className="jp-InfinStor-jobDetail"
          aria-label={trans.__('Job %1', jobTitle(selected))}
          data-testid="infinstor-job-detail"
          data-job-id={selected.id}
          data-status={selected.status}
        >
          <h3 className="jp-InfinStor-sectionTitle">
            <StatusBadge status={selected.status} /> {jobTitle(selected)}
          </h3>
          <dl className="jp-InfinStor-fields">
            <dt>{trans.__('Path')}</dt>
            <dd className="jp-InfinStor-uri">{selected.path}</dd>
            <dt>{trans.__('Target')}</dt>
            <dd>
              {selected.target}
              {selected.options?.env_manager ? ` · ${String(selected.options.env_manager)}` : ''}
            </dd>
            <dt>{trans.__('Started')}</dt>
            <dd>{formatTimestamp(selected.started_at ?? selected.created_at)}</dd>
            <dt>{trans.__('Duration')}</dt>
            <dd data-testid="infinstor-job-detail-duration">
              {formatDuration(jobDuration(selected, model.fetchedAt, now))}
            </dd>
            {selected.run_id && (
              <>
                <dt>{trans.__('Run')}</dt>
                <dd className="jp-InfinStor-uri" data-testid="infinstor-job-run-id">
                  {selected.run_id}
                </dd>
              </>
            )}
            {Object.keys(selected.parameters ?? {}).length > 0 && (
              <>
                <dt>{trans.__('Parameters')}</dt>
                <dd data-testid="infinstor-job-parameters">
                  {Object.entries(selected.parameters).map(([k, v]) => (
                    <code key={k} className="jp-InfinStor-param">
                      {k}={formatValue(v)}
                    </code>
                  ))}
                </dd>
              </>
            )}
          </dl>
          {selected.failure_reason && (
            <p
              className={`jp-InfinStor-message jp-InfinStor-message-${selected.status === 'FAILED' ? 'error' : 'warning'}`}
              data-testid="infinstor-job-failure"
            >
              {selected.failure_reason}
            </p>
          )}
          <div className="jp-InfinStor-jobActions">
            {isActive(selected.status) && (
              <Button
                small
                className="jp-mod-styled jp-mod-warn"
                data-testid="infinstor-job-cancel"
                disabled={busy !== null}
                onClick={() =>
                  void run('cancel', async () => {
                    const ok = await props.confirm(
                      trans.__('Cancel job?'),
                      trans.__(
                        'Cancel “%1”? Its processes are stopped and the run is marked KILLED.',
                        jobTitle(selected)
                      ),
                      trans.__('Cancel job')
                    );
                    if (ok) {
                      await model.cancel(selected.id);
                    }
                  })
                }
              >
                {busy === 'cancel' ? trans.__('Cancelling…') : trans.__('Cancel')}
              </Button>
            )}
            {selected.run_id && (
              <Button
                small
                className="jp-mod-styled"
                data-testid="infinstor-job-open-run"
                disabled={busy !== null}
                onClick={() => void run('open', async () => props.actions.openRun(selected))}
              >
                {trans.__('Open run')}
              </Button>
            )}
            <Button
              small
              className="jp-mod-styled"
              data-testid="infinstor-job-rerun"
              disabled={busy !== null}
              onClick={() => void run('rerun', async () => props.actions.rerun(selected))}
            >
              {trans.__('Re-run…')}
            </Button>
            {isEnded(selected.status) && (
              <Button
                small
                className="jp-mod-styled"
                data-testid="infinstor-job-delete"
                disabled={busy !== null}
                onClick={() =>
                  void run('delete', async () => {
                    const ok = await props.confirm(
                      trans.__('Delete job?'),
                      trans.__(
                        'Delete “%1” from the job list? Its MLflow run stays.',
                        jobTitle(selected)
                      ),
                      trans.__('Delete')
                    );
                    if (ok) {
                      await model.remove(selected.id);
                      panel.selectJob(null);
                    }
                  })
                }
              >
                {trans.__('Delete')}
              </Button>
            )}
          </div>
          {actionError && (
            <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert" data-testid="infinstor-job-action-error">
              {actionError}
            </div>
          )}
          {panel.progress && panel.progress.jobId === selected.id && (
            <UseSignal key={`progress-${selected.id}`} signal={panel.progress.changed} initialSender={panel.progress}>
              {progress => (progress ? <CellProgress progress={progress} jobStatus={selected.status} trans={trans} /> : null)}
            </UseSignal>
          )}
          {panel.log && panel.log.jobId === selected.id && (
            <UseSignal key={panel.log.jobId} signal={panel.log.changed} initialSender={panel.log}>
              {log => (log ? <LogTail log={log} trans={trans} /> : null)}
            </UseSignal>
          )}
        </section>
      )}
    </PollingListView>
  );
}

/**
 * The live tail of a job's log; stays scrolled to the bottom unless the user
 * scrolled up.
 */
export function LogTail(props: { log: JobLogModel; trans: TranslationBundle }): JSX.Element {
  const { log, trans } = props;
  const ref = React.useRef<HTMLPreElement>(null);
  const stick = React.useRef(true);
  React.useLayoutEffect(() => {
    const node = ref.current;
    if (node && stick.current) {
      node.scrollTop = node.scrollHeight;
    }
  }, [log.text]);
  return (
    <div className="jp-InfinStor-logBox">
      <div className="jp-InfinStor-logHeader">
        <span>{trans.__('Log')}</span>
        <span className="jp-InfinStor-hint" data-testid="infinstor-job-log-state">
          {log.complete ? trans.__('complete') : log.polling ? trans.__('live') : trans.__('paused')}
        </span>
      </div>
      {log.error && (
        <p className="jp-InfinStor-fieldError" role="alert">
          {trans.__('Could not read the log: %1', log.error.message)}
        </p>
      )}
      <pre
        ref={ref}
        className="jp-InfinStor-log"
        role="log"
        tabIndex={0}
        aria-label={trans.__('Job log')}
        data-testid="infinstor-job-log"
        onScroll={event => {
          const node = event.currentTarget;
          stick.current = node.scrollTop + node.clientHeight >= node.scrollHeight - 8;
        }}
      >
        {log.truncated ? trans.__('… earlier output not shown …\n') : ''}
        {log.text || (log.complete ? trans.__('(no output)') : '')}
      </pre>
    </div>
  );
}

/**
 * The Jobs view widget (left area, or hosted by the InfinStor sidebar).
 */
export class JobsPanel extends PollingPanel<JobsModel> {
  constructor(options: JobsPanel.IOptions) {
    const trans = translationBundle(options.translator);
    super({
      ...options,
      id: options.id ?? JOBS_PANEL_ID,
      className: 'jp-InfinStor-jobsPanel',
      icon: jobsIcon,
      caption: trans.__('InfinStor jobs'),
      label: trans.__('InfinStor jobs')
    });
    this._actions = options.actions;
    this.model.changed.connect(this._onModelChanged, this);
  }

  /** The selected job's id. */
  get selectedId(): string | null {
    return this._selectedId;
  }

  /** The selected job's log tail. */
  get log(): JobLogModel | null {
    return this._log;
  }

  /** The selected notebook job's cell progress. */
  get progress(): JobProgressModel | null {
    return this._progress;
  }

  get selectionChanged(): ISignal<this, string | null> {
    return this._selectionChanged;
  }

  /**
   * Select a job (null: none) and follow its log.
   */
  selectJob(id: string | null): void {
    if (id === this._selectedId) {
      return;
    }
    this._selectedId = id;
    this._log?.dispose();
    this._log = id
      ? new JobLogModel({ client: this.model.client, jobId: id, visible: this.isVisible })
      : null;
    this._progress?.dispose();
    this._progress = null;
    this._followProgress();
    this._selectionChanged.emit(id);
    this.update();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._log?.dispose();
    this._log = null;
    this._progress?.dispose();
    this._progress = null;
    Signal.clearData(this);
    super.dispose();
  }

  protected onAfterShow(msg: any): void {
    super.onAfterShow(msg);
    if (this._log) {
      this._log.visible = true;
    }
    if (this._progress) {
      this._progress.visible = true;
    }
    this.update();
  }

  protected onAfterHide(msg: any): void {
    super.onAfterHide(msg);
    if (this._log) {
      this._log.visible = false;
    }
    if (this._progress) {
      this._progress.visible = false;
    }
  }

  protected renderView(): JSX.Element {
    return (
      <JobsView
        model={this.model}
        panel={this}
        actions={this._actions}
        confirm={this.confirm}
        trans={this.trans}
      />
    );
  }

  private _onModelChanged(): void {
    // Select the newest job when nothing is selected; forget a deleted one.
    if (this._selectedId && !this.model.find(this._selectedId) && !this.model.loading) {
      this.selectJob(null);
    }
    if (!this._selectedId && this.model.jobs.length > 0) {
      this.selectJob(this.model.jobs[0].id);
    }
    // A job that just ended: read the rest of its log.
    const job = this._selectedId ? this.model.find(this._selectedId) : undefined;
    if (job && this._log && isEnded(job.status) && !this._log.complete && this.isVisible) {
      void this._log.refresh();
    }
    this._followProgress();
    if (job && this._progress && isEnded(job.status) && !this._progress.complete && this.isVisible) {
      void this._progress.refresh().catch(() => undefined);
    }
  }

  /** Follow the selected job's cells once it is known to be a notebook job. */
  private _followProgress(): void {
    const job = this._selectedId ? this.model.find(this._selectedId) : undefined;
    if (!this._progress && job?.kind === 'notebook') {
      this._progress = new JobProgressModel({ client: this.model.client, jobId: job.id, visible: this.isVisible });
    }
  }

  private _actions: IJobActions;
  private _progress: JobProgressModel | null = null;
  private _selectedId: string | null = null;
  private _log: JobLogModel | null = null;
  private _selectionChanged = new Signal<this, string | null>(this);
}

export namespace JobsPanel {
  export interface IOptions extends PollingPanel.ICommonOptions<JobsModel> {
    actions: IJobActions;
  }
}
