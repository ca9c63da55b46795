/**
 * The runs table of the runs tab: `@tanstack/react-table` for the columns (widths the user
 * drags), `@tanstack/react-virtual` for the rows (only those in view, plus a few, are in the
 * DOM), the next page loaded as the end comes near. The selection and run-name columns stay
 * in place while the others scroll sideways. Nested runs sit under their parent.
 */
import {
  ColumnDef,
  ColumnSizingState,
  getCoreRowModel,
  Header,
  useReactTable
} from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import React from 'react';

import {
  ColumnId,
  columnValue,
  formatDuration,
  formatIso,
  formatRelative,
  isLabNotebookPath,
  numberFormatter,
  runDuration,
  runName,
  runSource,
  runUser
} from '../mlflow/format';
import { IRun } from '../mlflow/types';
import { StatusBadge, useSignal, useTrans } from '../mlflow/views/common';
import { columnKind, columnLabel } from './columns';
import { groupRuns, IRunRow } from './grouping';
import { ExperimentRunsModel } from './model';
import { ISort } from './viewState';

export const ROW_HEIGHT = 28;
const SELECT_WIDTH = 32;
const NAME_WIDTH = 220;

/** Default widths by kind of column (px). */
function defaultWidth(id: ColumnId): number {
  switch (id) {
    case 'name':
      return NAME_WIDTH;
    case 'status':
      return 90;
    case 'start':
      return 110;
    case 'duration':
      return 90;
    case 'user':
      return 100;
    case 'source':
      return 180;
    default:
      return columnKind(id) === 'metric' ? 100 : 110;
  }
}

export interface IRunsTableProps {
  model: ExperimentRunsModel;
  /** The columns after the run name. */
  columns: ColumnId[];
  widths: Record<string, number>;
  onResize: (widths: Record<string, number>) => void;
  sort: ISort;
  onSort: (sort: ISort) => void;
  selected: ReadonlySet<string>;
  onToggle: (runId: string) => void;
  onOpen: (run: IRun) => void;
  onOpenSource: (path: string) => void;
  label: string;
}

/** Re-render every `ms` (relative times). */
function useNow(ms: number): number {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

export function RunsTable(props: IRunsTableProps): JSX.Element {
  const { model } = props;
  const trans = useTrans();
  useSignal(model.changed);
  const now = useNow(30000);
  const runs = model.runs;
  const scrollRef = React.useRef<HTMLDivElement>(null);
  const [expanded, setExpanded] = React.useState<ReadonlySet<string>>(new Set());
  const [focusIndex, setFocusIndex] = React.useState(0);
  const focusPending = React.useRef(false);

  const rows = React.useMemo(() => groupRuns(runs, expanded), [runs, expanded]);

  // One formatter per metric column, over the loaded values: same decimals down the column.
  const formatters = React.useMemo(() => {
    const out = new Map<string, (v: number | string | null | undefined) => string>();
    for (const id of props.columns) {
      if (columnKind(id) === 'metric') {
        out.set(id, numberFormatter(runs.map(r => columnValue(r, id) as number | null)));
      }
    }
    return out;
  }, [runs, props.columns.join('\u0000')]);

  const toggleExpanded = React.useCallback((runId: string) => {
    setExpanded(prev => {
      const next = new Set(prev);
      if (next.has(runId)) {
        next.delete(runId);
      } else {
        next.add(runId);
      }
      return next;
    });
  }, []);

  const cell = (id: ColumnId, run: IRun): React.ReactNode => {
    switch (id) {
      case 'status':
        return <StatusBadge status={run.info.status} showLabel trans={trans} />;
      case 'start':
        return <span title={formatIso(run.info.start_time)}>{formatRelative(run.info.start_time, now, trans)}</span>;
      case 'duration':
        return formatDuration(runDuration(run, now), trans);
      case 'user':
        return runUser(run);
      case 'source': {
        const source = runSource(run);
        if (!source) {
          return '';
        }
        if (!isLabNotebookPath(source)) {
          return <span title={source}>{source}</span>;
        }
        return (
          <button
            className="jp-InfinStor-linkButton"
            tabIndex={-1}
            title={trans.__('Open %1', source)}
            data-testid="infinstor-run-source"
            onClick={event => {
              event.stopPropagation();
              props.onOpenSource(source);
            }}
          >
            {source}
          </button>
        );
      }
      default: {
        const v = columnValue(run, id);
        if (v === null) {
          return '';
        }
        if (columnKind(id) === 'metric') {
          return <span title={String(v)}>{formatters.get(id)!(v)}</span>;
        }
        return <span title={String(v)}>{String(v)}</span>;
      }
    }
  };

  const nameCell = (row: IRunRow): React.ReactNode => {
    const { run } = row;
    const name = runName(run);
    return (
      <span className="jp-InfinStor-runName" style={{ paddingLeft: row.depth * 16 }}>
        {row.childCount > 0 ? (
          <button
            className="jp-InfinStor-expander"
            tabIndex={-1}
            aria-expanded={row.expanded}
            aria-label={
              row.expanded
                ? trans.__('Hide the %1 child runs of %2', row.childCount, name)
                : trans.__('Show the %1 child runs of %2', row.childCount, name)
            }
            data-testid="infinstor-run-expander"
            onClick={event => {
              event.stopPropagation();
              toggleExpanded(run.info.run_id);
            }}
          >
            {row.expanded ? '▾' : '▸'}
            <span className="jp-InfinStor-childCount">{row.childCount}</span>
          </button>
        ) : (
          <span className="jp-InfinStor-expanderSpace" aria-hidden="true" />
        )}
        <StatusBadge status={run.info.status} trans={trans} />
        <button
          className="jp-InfinStor-linkButton jp-InfinStor-runNameButton"
          tabIndex={-1}
          title={trans.__('Open run %1', name)}
          data-testid="infinstor-run-name"
          onClick={event => {
            event.stopPropagation();
            props.onOpen(run);
          }}
        >
          {name}
        </button>
      </span>
    );
  };

  // The table renders its own cells; tanstack keeps the columns and their widths (display columns).
  const allColumns: ColumnId[] = ['name', ...props.columns];
  const columns = React.useMemo<ColumnDef<IRunRow, unknown>[]>(
    () =>
      allColumns.map(id => ({
        id,
        header: columnLabel(id, trans),
        size: props.widths[id] ?? defaultWidth(id),
        minSize: 40,
        maxSize: 1200
      })),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [allColumns.join('\u0000'), props.widths, trans]
  );

  const sizing: ColumnSizingState = {};
  for (const id of allColumns) {
    sizing[id] = props.widths[id] ?? defaultWidth(id);
  }
  const table = useReactTable({
    data: rows,
    columns,
    getCoreRowModel: getCoreRowModel(),
    getRowId: row => row.run.info.run_id,
    manualSorting: true,
    columnResizeMode: 'onEnd',
    enableColumnResizing: true,
    state: { columnSizing: sizing },
    onColumnSizingChange: updater => {
      const next = typeof updater === 'function' ? updater(sizing) : updater;
      const widths: Record<string, number> = { ...props.widths };
      for (const [id, w] of Object.entries(next)) {
        if (w !== sizing[id]) {
          widths[id] = Math.round(w);
        }
      }
      props.onResize(widths);
    }
  });
  const headers = table.getHeaderGroups()[0].headers;
  const widths = headers.map(h => h.getSize());
  const template = `${SELECT_WIDTH}px ${widths.map(w => `${w}px`).join(' ')}`;
  const totalWidth = SELECT_WIDTH + widths.reduce((a, b) => a + b, 0);

  const hasMore = model.hasMore;
  const virtualizer = useVirtualizer({
    count: rows.length + (hasMore ? 1 : 0),
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10
  });
  const items = virtualizer.getVirtualItems();

  // Server-side paging: load the next page as the end comes into view.
  const lastIndex = items.length ? items[items.length - 1].index : -1;
  React.useEffect(() => {
    if (hasMore && !model.loadingMore && !model.moreError && lastIndex >= rows.length - 20) {
      void model.loadMore();
    }
  }, [lastIndex, rows.length, hasMore, model.loadingMore, model.moreError, model]);

  React.useEffect(() => {
    if (focusPending.current) {
      focusPending.current = false;
      scrollRef.current?.querySelector<HTMLElement>(`[data-index="${focusIndex}"]`)?.focus({ preventScroll: true });
    }
  });

  const moveFocus = (index: number) => {
    const i = Math.max(0, Math.min(rows.length - 1, index));
    setFocusIndex(i);
    focusPending.current = true;
    virtualizer.scrollToIndex(i, { align: 'auto' });
  };

  const onKeyDown = (event: React.KeyboardEvent) => {
    if ((event.target as HTMLElement).getAttribute('role') !== 'row') {
      return;
    }
    const page = Math.max(1, Math.floor((scrollRef.current?.clientHeight ?? 300) / ROW_HEIGHT) - 1);
    const row = rows[focusIndex];
    switch (event.key) {
      case 'ArrowDown':
        moveFocus(focusIndex + 1);
        break;
      case 'ArrowUp':
        moveFocus(focusIndex - 1);
        break;
      case 'PageDown':
        moveFocus(focusIndex + page);
        break;
      case 'PageUp':
        moveFocus(focusIndex - page);
        break;
      case 'Home':
        moveFocus(0);
        break;
      case 'End':
        moveFocus(rows.length - 1);
        break;
      case 'ArrowRight':
        if (row && row.childCount && !row.expanded) {
          toggleExpanded(row.run.info.run_id);
        }
        break;
      case 'ArrowLeft':
        if (row && row.expanded) {
          toggleExpanded(row.run.info.run_id);
        }
        break;
      case 'Enter':
        if (row) {
          props.onOpen(row.run);
        }
        break;
      case ' ':
        if (row) {
          props.onToggle(row.run.info.run_id);
        }
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  const sortBy = (id: ColumnId) => {
    const active = props.sort.column === id;
    // Newest first and largest metric first are what people look for first.
    const firstDesc = id === 'start' || id === 'duration' || columnKind(id) === 'metric';
    props.onSort({ column: id, desc: active ? !props.sort.desc : firstDesc });
  };

  const headerCell = (h: Header<IRunRow, unknown>, index: number) => {
    const id = h.column.id as ColumnId;
    const active = props.sort.column === id;
    const kind = columnKind(id);
    const label = columnLabel(id, trans);
    const described =
      kind === 'metric' ? trans.__('Metric %1', label) : kind === 'param' ? trans.__('Parameter %1', label) : kind === 'tag' ? trans.__('Tag %1', label) : label;
    const resizing = h.column.getIsResizing();
    return (
      <div
        key={h.id}
        role="columnheader"
        className={`jp-InfinStor-runsCell jp-InfinStor-runsHeadCell jp-InfinStor-kind-${kind}${index === 0 ? ' jp-InfinStor-stickyName' : ''}`}
        aria-sort={active ? (props.sort.desc ? 'descending' : 'ascending') : 'none'}
        aria-label={described}
        data-column={id}
      >
        <button
          className="jp-InfinStor-sortButton"
          title={trans.__('Sort by %1', described)}
          data-testid={`infinstor-sort-${id}`}
          onClick={() => sortBy(id)}
        >
          {kind !== 'attribute' && (
            <span className="jp-InfinStor-kindMark" aria-hidden="true">
              {kind === 'metric' ? 'm' : kind === 'param' ? 'p' : 't'}
            </span>
          )}
          <span className="jp-InfinStor-sortLabel">{label}</span>
          {active && <span aria-hidden="true">{props.sort.desc ? ' ▾' : ' ▴'}</span>}
        </button>
        <div
          className={`jp-InfinStor-resizer${resizing ? ' jp-mod-active' : ''}`}
          role="separator"
          aria-orientation="vertical"
          aria-label={trans.__('Resize %1', label)}
          data-testid={`infinstor-resize-${id}`}
          onMouseDown={h.getResizeHandler()}
          onTouchStart={h.getResizeHandler()}
          onDoubleClick={() => {
            const widths = { ...props.widths };
            delete widths[id];
            props.onResize(widths);
          }}
          style={resizing ? { transform: `translateX(${table.getState().columnSizingInfo.deltaOffset ?? 0}px)` } : undefined}
        />
      </div>
    );
  };

  return (
    <div
      ref={scrollRef}
      className={`jp-InfinStor-runsScroller jp-InfinStor-runsGrid${model.stale ? ' jp-mod-stale' : ''}`}
      role="grid"
      aria-label={props.label}
      aria-rowcount={hasMore ? -1 : rows.length + 1}
      aria-busy={model.busy}
      data-testid="infinstor-runs-table"
      onKeyDown={onKeyDown}
    >
      <div style={{ width: totalWidth, minWidth: '100%' }}>
        <div className="jp-InfinStor-runsHeader" role="row" aria-rowindex={1} style={{ gridTemplateColumns: template }}>
          <div role="columnheader" className="jp-InfinStor-runsCell jp-InfinStor-stickySelect">
            <span className="jp-InfinStor-srOnly">{trans.__('Selected')}</span>
          </div>
          {headers.map(headerCell)}
        </div>
        <div role="rowgroup" style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map(item => {
            const row = rows[item.index];
            if (!row) {
              return (
                <div
                  key="loader"
                  role="row"
                  className="jp-InfinStor-runsRow jp-InfinStor-runsLoader"
                  style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
                >
                  <div role="gridcell" className="jp-InfinStor-runsCell">
                    {model.moreError ? (
                      <button className="jp-InfinStor-linkButton" onClick={() => void model.loadMore()}>
                        {trans.__('Could not load more runs (%1). Retry', model.moreError.message)}
                      </button>
                    ) : (
                      trans.__('Loading more runs…')
                    )}
                  </div>
                </div>
              );
            }
            const id = row.run.info.run_id;
            const selected = props.selected.has(id);
            return (
              <div
                key={id}
                role="row"
                data-index={item.index}
                data-run-id={id}
                data-depth={row.depth}
                data-testid="infinstor-run-row"
                aria-rowindex={item.index + 2}
                aria-selected={selected}
                aria-level={row.depth + 1}
                aria-expanded={row.childCount ? row.expanded : undefined}
                tabIndex={item.index === focusIndex ? 0 : -1}
                className={`jp-InfinStor-runsRow${selected ? ' jp-mod-selected' : ''}`}
                style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT, gridTemplateColumns: template, width: totalWidth }}
                onFocus={() => setFocusIndex(item.index)}
                onDoubleClick={() => props.onOpen(row.run)}
              >
                <div role="gridcell" className="jp-InfinStor-runsCell jp-InfinStor-stickySelect">
                  <input
                    type="checkbox"
                    tabIndex={-1}
                    checked={selected}
                    aria-label={trans.__('Select %1 for comparison', runName(row.run))}
                    onChange={() => props.onToggle(id)}
                  />
                </div>
                {allColumns.map((col, i) => (
                  <div
                    key={col}
                    role="gridcell"
                    className={`jp-InfinStor-runsCell jp-InfinStor-kind-${columnKind(col)}${i === 0 ? ' jp-InfinStor-stickyName' : ''}`}
                  >
                    {i === 0 ? nameCell(row) : cell(col, row.run)}
                  </div>
                ))}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
