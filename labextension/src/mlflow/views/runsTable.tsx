import {
  ColumnDef,
  flexRender,
  getCoreRowModel,
  useReactTable
} from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import React from 'react';

import {
  ColumnId,
  columnValue,
  formatDuration,
  formatMetric,
  formatTimestamp,
  isLabNotebookPath,
  runDuration,
  runName,
  runSource,
  runUser
} from '../format';
import { RunsModel } from '../models';
import { IRun } from '../types';
import { ErrorState, LoadingState, EmptyState, StatusBadge, useSignal } from './common';

export const ROW_HEIGHT = 28;

interface IColumnMeta {
  width: number;
  label: string;
}

function columnLabel(id: ColumnId): string {
  switch (id) {
    case 'status':
      return 'Status';
    case 'name':
      return 'Run name';
    case 'start':
      return 'Started';
    case 'duration':
      return 'Duration';
    case 'user':
      return 'User';
    case 'source':
      return 'Source';
    default: {
      const [kind, ...rest] = id.split(':');
      return `${kind === 'param' ? 'param' : kind === 'metric' ? 'metric' : 'tag'}: ${rest.join(':')}`;
    }
  }
}

export interface IRunsTableProps {
  model: RunsModel;
  extraColumns: ColumnId[];
  selected: ReadonlySet<string>;
  onToggle: (runId: string) => void;
  onOpen: (run: IRun) => void;
  onOpenSource: (path: string) => void;
  label: string;
}

/**
 * The runs table: `@tanstack/react-table` for the columns, `@tanstack/react-virtual`
 * for the rows (only the visible rows plus a small overscan are in the DOM),
 * the next page is loaded as the end comes near. Keyboard: arrows move between
 * rows, Enter opens a run, Space selects it.
 */
export function RunsTable(props: IRunsTableProps): JSX.Element {
  const { model } = props;
  useSignal(model.changed);
  const runs = model.runs;
  const scrollRef = React.useRef<HTMLDivElement>(null);
  const [focusIndex, setFocusIndex] = React.useState(0);
  const focusPending = React.useRef(false);

  // Stand by (no polling) while the table is not visible.
  React.useEffect(() => {
    const el = scrollRef.current;
    if (!el || typeof IntersectionObserver === 'undefined') {
      return;
    }
    const observer = new IntersectionObserver(entries => {
      model.visible = entries.some(e => e.isIntersecting);
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      model.visible = false;
    };
  }, [model]);

  const columns = React.useMemo<ColumnDef<IRun, unknown>[]>(() => {
    const base: Array<{ id: ColumnId; width: number; cell: (run: IRun) => React.ReactNode }> = [
      { id: 'status', width: 34, cell: run => <StatusBadge status={run.info.status} /> },
      {
        id: 'name',
        width: 170,
        cell: run => (
          <button
            className="jp-InfinStor-linkButton"
            tabIndex={-1}
            title={`Open run ${runName(run)}`}
            onClick={event => {
              event.stopPropagation();
              props.onOpen(run);
            }}
          >
            {runName(run)}
          </button>
        )
      },
      { id: 'start', width: 140, cell: run => formatTimestamp(run.info.start_time) },
      { id: 'duration', width: 80, cell: run => formatDuration(runDuration(run)) },
      { id: 'user', width: 90, cell: run => runUser(run) },
      {
        id: 'source',
        width: 170,
        cell: run => {
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
              title={`Open ${source}`}
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
      },
      ...props.extraColumns.map(id => ({
        id,
        width: 110,
        cell: (run: IRun) => {
          const v = columnValue(run, id);
          if (v === null) {
            return '';
          }
          return id.startsWith('metric:') ? formatMetric(v) : String(v);
        }
      }))
    ];
    return base.map(c => ({
      id: c.id,
      accessorFn: (run: IRun) => columnValue(run, c.id),
      header: columnLabel(c.id),
      cell: info => c.cell(info.row.original),
      meta: { width: c.width, label: columnLabel(c.id) } as IColumnMeta
    }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.extraColumns.join('\u0000'), props.onOpen, props.onOpenSource]);

  const table = useReactTable({
    data: runs,
    columns,
    getCoreRowModel: getCoreRowModel(),
    getRowId: run => run.info.run_id,
    manualSorting: true,
    state: { sorting: [{ id: model.sort.column, desc: model.sort.desc }] }
  });
  const rows = table.getRowModel().rows;

  const hasMore = model.hasMore;
  const virtualizer = useVirtualizer({
    count: rows.length + (hasMore ? 1 : 0),
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8
  });
  const items = virtualizer.getVirtualItems();

  // Server-side paging: load the next page as the end comes into view.
  const lastIndex = items.length ? items[items.length - 1].index : -1;
  React.useEffect(() => {
    if (hasMore && !model.loading && !model.error && lastIndex >= rows.length - 10) {
      void model.loadMore();
    }
  }, [lastIndex, rows.length, hasMore, model.loading, model.error, model]);

  React.useEffect(() => {
    if (focusPending.current) {
      focusPending.current = false;
      const el = scrollRef.current?.querySelector<HTMLElement>(`[data-index="${focusIndex}"]`);
      el?.focus({ preventScroll: true });
    }
  });

  const widths = table.getAllLeafColumns().map(c => (c.columnDef.meta as IColumnMeta).width);
  const template = `32px ${widths.map(w => `${w}px`).join(' ')}`;
  const totalWidth = 32 + widths.reduce((a, b) => a + b, 0);

  const moveFocus = (index: number) => {
    const i = Math.max(0, Math.min(rows.length - 1, index));
    setFocusIndex(i);
    focusPending.current = true;
    virtualizer.scrollToIndex(i, { align: 'auto' });
  };

  const onKeyDown = (event: React.KeyboardEvent) => {
    const target = event.target as HTMLElement;
    if (target.getAttribute('role') !== 'row') {
      return;
    }
    const page = Math.max(1, Math.floor((scrollRef.current?.clientHeight ?? 300) / ROW_HEIGHT) - 1);
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
      case 'Enter':
        if (rows[focusIndex]) {
          props.onOpen(rows[focusIndex].original);
        }
        break;
      case ' ':
        if (rows[focusIndex]) {
          props.onToggle(rows[focusIndex].id);
        }
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  const header = table.getHeaderGroups()[0];
  const sortable = (id: string) => id !== 'status' || true;

  return (
    <div className="jp-InfinStor-runsTableWrap">
      {model.error && (
        <ErrorState
          error={model.error}
          what="Could not load the runs."
          compact
          onRetry={() => void (model.loaded && runs.length && model.hasMore ? model.loadMore() : model.reload())}
        />
      )}
      <div
        ref={scrollRef}
        className="jp-InfinStor-runsScroller"
        role="grid"
        aria-label={props.label}
        aria-rowcount={hasMore ? -1 : rows.length + 1}
        aria-busy={model.loading}
        data-testid="infinstor-runs-table"
        onKeyDown={onKeyDown}
      >
        <div style={{ width: totalWidth, minWidth: '100%' }}>
          <div className="jp-InfinStor-runsHeader" role="row" aria-rowindex={1} style={{ gridTemplateColumns: template }}>
            <div role="columnheader" className="jp-InfinStor-runsCell">
              <span className="jp-InfinStor-srOnly">Selected</span>
            </div>
            {header.headers.map(h => {
              const id = h.column.id as ColumnId;
              const active = model.sort.column === id;
              const label = (h.column.columnDef.meta as IColumnMeta).label;
              return (
                <div
                  key={h.id}
                  role="columnheader"
                  className="jp-InfinStor-runsCell"
                  aria-sort={active ? (model.sort.desc ? 'descending' : 'ascending') : 'none'}
                >
                  <button
                    className="jp-InfinStor-sortButton"
                    disabled={!sortable(id)}
                    title={`Sort by ${label}${id === 'duration' ? ' (sorts the loaded runs)' : ''}`}
                    data-testid={`infinstor-sort-${id}`}
                    onClick={() =>
                      void model.setSort({ column: id, desc: active ? !model.sort.desc : id === 'start' || id.startsWith('metric:') })
                    }
                  >
                    <span className="jp-InfinStor-sortLabel">
                      {id === 'status' ? <span aria-label="Status">●</span> : flexRender(h.column.columnDef.header, h.getContext())}
                    </span>
                    {active && <span aria-hidden="true">{model.sort.desc ? ' ▾' : ' ▴'}</span>}
                  </button>
                </div>
              );
            })}
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
                      {model.loading ? 'Loading more runs…' : ''}
                    </div>
                  </div>
                );
              }
              const selected = props.selected.has(row.id);
              return (
                <div
                  key={row.id}
                  role="row"
                  data-index={item.index}
                  data-run-id={row.id}
                  data-testid="infinstor-run-row"
                  aria-rowindex={item.index + 2}
                  aria-selected={selected}
                  tabIndex={item.index === focusIndex ? 0 : -1}
                  className={`jp-InfinStor-runsRow${selected ? ' jp-mod-selected' : ''}`}
                  style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT, gridTemplateColumns: template }}
                  onFocus={() => setFocusIndex(item.index)}
                  onDoubleClick={() => props.onOpen(row.original)}
                >
                  <div role="gridcell" className="jp-InfinStor-runsCell">
                    <input
                      type="checkbox"
                      tabIndex={-1}
                      checked={selected}
                      aria-label={`Select ${runName(row.original)} for comparison`}
                      onChange={() => props.onToggle(row.id)}
                    />
                  </div>
                  {row.getVisibleCells().map(cell => (
                    <div key={cell.id} role="gridcell" className="jp-InfinStor-runsCell">
                      {flexRender(cell.column.columnDef.cell, cell.getContext())}
                    </div>
                  ))}
                </div>
              );
            })}
          </div>
        </div>
        {!model.loaded && <LoadingState label="Loading runs…" />}
        {model.loaded && !model.error && runs.length === 0 && (
          <EmptyState
            title={model.filter ? 'No runs match this filter.' : 'No runs in this experiment yet.'}
            hint={
              model.filter
                ? 'Change or clear the filter.'
                : 'Runs appear here when a notebook logs with mlflow.start_run().'
            }
          />
        )}
      </div>
    </div>
  );
}
