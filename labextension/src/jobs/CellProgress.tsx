import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { useTicker } from '../common/PollingPanel';
import { formatCellTime } from './format';
import { cellElapsed, failedCell, ICellProgress, JobProgressModel, runningCell } from './progress';
import { isEnded } from './types';

/**
 * A notebook job's cells as they run: "Cell 7 of 23" with its first line and time, each cell's
 * time and output as it arrives, and for a failure the failing cell with its traceback.
 */
export function CellProgress(props: { progress: JobProgressModel; jobStatus: string; trans: TranslationBundle }): JSX.Element {
  const { progress, trans } = props;
  const { state } = progress;
  const running = runningCell(state);
  const failed = failedCell(state);
  const now = progress.serverNow(useTicker(!!running && !progress.complete));
  const [opened, setOpened] = React.useState<Record<number, boolean>>({});
  const total = state.total ?? 0;
  const ran = state.cells.filter(c => c.status === 'ok' || c.status === 'error').length;
  const stopped = state.cells.find(c => c.status === 'stopped');
  const ended = isEnded(props.jobStatus) || progress.complete;

  let summary: string;
  if (state.total === null) {
    summary = ended ? trans.__('The notebook did not start.') : trans.__('Waiting for the notebook to start…');
  } else if (running) {
    summary = trans.__('Cell %1 of %2', running.cell, total);
  } else if (failed) {
    summary = trans.__('Failed in cell %1 of %2', failed.cell, total);
  } else if (stopped) {
    summary = trans.__('Stopped in cell %1 of %2', stopped.cell, total);
  } else if (state.done?.status === 'finished') {
    summary = trans._n('The cell ran.', 'All %1 cells ran.', total);
  } else {
    summary = trans.__('%1 of %2 cells ran', ran, total);
  }
  const current = running ?? failed ?? stopped ?? null;

  return (
    <section
      className="jp-InfinStor-progress"
      aria-label={trans.__('Cell progress')}
      data-testid="infinstor-job-progress"
      data-state={running ? 'running' : failed ? 'failed' : stopped ? 'stopped' : state.done ? state.done.status : 'waiting'}
    >
      <div className="jp-InfinStor-progressHeader">
        <span className="jp-InfinStor-progressSummary" data-testid="infinstor-job-progress-summary">
          {summary}
        </span>
        {current && (
          <span className="jp-InfinStor-cellTime" data-testid="infinstor-job-progress-time">
            {formatCellTime(cellElapsed(current, now))}
          </span>
        )}
      </div>
      {current && (
        <code className="jp-InfinStor-progressSource" data-testid="infinstor-job-progress-source" title={current.source}>
          {current.injected ? trans.__('(parameters injected by the job)') : current.source}
        </code>
      )}
      {state.total !== null && (
        <div
          className="jp-InfinStor-progressBar"
          role="progressbar"
          aria-label={trans.__('Cells run')}
          aria-valuemin={0}
          aria-valuemax={total}
          aria-valuenow={ran}
        >
          <div
            className={`jp-InfinStor-progressFill${failed ? ' jp-mod-error' : ''}`}
            style={{ width: `${total ? Math.round((100 * ran) / total) : 0}%` }}
          />
        </div>
      )}
      {state.cells.length > 0 && (
        <ol className="jp-InfinStor-cellList" data-testid="infinstor-job-cells">
          {state.cells.map(cell => {
            const open = opened[cell.cell] ?? (cell === running || cell === failed || cell === stopped);
            return (
              <CellRow
                key={cell.cell}
                cell={cell}
                open={open}
                toggle={() => setOpened(o => ({ ...o, [cell.cell]: !open }))}
                now={now}
                trans={trans}
              />
            );
          })}
        </ol>
      )}
      {state.done?.status === 'failed' && !failed && state.done.message && (
        <pre className="jp-InfinStor-traceback" data-testid="infinstor-job-progress-message">
          {state.done.message}
        </pre>
      )}
    </section>
  );
}

/** A traceback as text, without IPython's rules of dashes (they only wrap in a narrow panel). */
function tracebackText(error: NonNullable<ICellProgress['error']>): string {
  const lines = error.traceback.filter(line => !/^-{5,}$/.test(line.trim()));
  return lines.length ? lines.join('\n') : `${error.ename}: ${error.evalue}`;
}

function statusLabel(status: ICellProgress['status'], trans: TranslationBundle): string {
  switch (status) {
    case 'running':
      return trans.__('running');
    case 'ok':
      return trans.__('ran');
    case 'error':
      return trans.__('failed');
    default:
      return trans.__('stopped');
  }
}

function CellRow(props: {
  cell: ICellProgress;
  open: boolean;
  toggle: () => void;
  now: number;
  trans: TranslationBundle;
}): JSX.Element {
  const { cell, open, trans } = props;
  const bodyId = `infinstor-job-cell-${cell.cell}-body`;
  const hasBody = cell.output.length > 0 || cell.results.length > 0 || !!cell.error || cell.limited;
  return (
    <li
      className={`jp-InfinStor-cell jp-mod-${cell.status}`}
      data-testid="infinstor-job-cell"
      data-cell={cell.cell}
      data-status={cell.status}
    >
      <button
        type="button"
        className="jp-InfinStor-cellHead"
        aria-expanded={hasBody ? open : undefined}
        aria-controls={hasBody && open ? bodyId : undefined}
        onClick={props.toggle}
        disabled={!hasBody}
      >
        <span
          className={`jp-InfinStor-cellStatus jp-mod-${cell.status}`}
          role="img"
          aria-label={statusLabel(cell.status, trans)}
          title={statusLabel(cell.status, trans)}
        />
        <span className="jp-InfinStor-cellNumber">{cell.cell}</span>
        <code className="jp-InfinStor-cellSource">{cell.injected ? trans.__('(injected parameters)') : cell.source}</code>
        <span className="jp-InfinStor-cellTime" data-testid="infinstor-job-cell-time">
          {formatCellTime(cellElapsed(cell, props.now))}
        </span>
      </button>
      {hasBody && open && (
        <div id={bodyId} className="jp-InfinStor-cellBody">
          {cell.output.length > 0 && (
            <pre className="jp-InfinStor-cellOutput" data-testid="infinstor-job-cell-output">
              {cell.clipped ? trans.__('… earlier output not shown …\n') : ''}
              {cell.output.map((o, i) => (
                <span key={i} className={o.name === 'stderr' ? 'jp-InfinStor-stderr' : undefined}>
                  {o.text}
                </span>
              ))}
            </pre>
          )}
          {cell.results.map((result, i) => (
            <pre key={i} className="jp-InfinStor-cellOutput jp-InfinStor-cellResult" data-testid="infinstor-job-cell-result">
              {result.text}
            </pre>
          ))}
          {cell.limited && (
            <p className="jp-InfinStor-hint" data-testid="infinstor-job-cell-truncated">
              {cell.truncated > 0
                ? trans.__('%1 more characters of output are not shown here (see the log).', cell.truncated)
                : trans.__('More output is not shown here (see the log).')}
            </p>
          )}
          {cell.error && (
            <pre className="jp-InfinStor-traceback" data-testid="infinstor-job-cell-traceback">
              {tracebackText(cell.error)}
            </pre>
          )}
        </div>
      )}
    </li>
  );
}
