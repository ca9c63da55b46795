/**
 * Nested runs (a sweep's trials, the runs a job's notebook starts) shown under their parent.
 * Pure (unit-tested).
 */
import { PARENT_RUN_TAG } from '../mlflow/format';
import { IRun } from '../mlflow/types';

export interface IRunRow {
  run: IRun;
  /** 0 for a top-level run, 1 for a child, ... */
  depth: number;
  /** How many of its children are loaded (0: nothing to expand). */
  childCount: number;
  expanded: boolean;
}

export function parentRunId(run: IRun): string | null {
  const tag = run.data.tags?.find(t => t.key === PARENT_RUN_TAG);
  return tag?.value || null;
}

/**
 * The rows to show: every loaded run whose parent is not loaded at top level, in the order
 * given (the table's sort); the children of an expanded run right after it, in the same order.
 * A child whose parent is not among the loaded runs stays at top level, so no run is hidden.
 */
export function groupRuns(runs: readonly IRun[], expanded: ReadonlySet<string>): IRunRow[] {
  const loaded = new Set<string>();
  for (const run of runs) {
    loaded.add(run.info.run_id);
  }
  const children = new Map<string, IRun[]>();
  const top: IRun[] = [];
  for (const run of runs) {
    const parent = parentRunId(run);
    if (parent && parent !== run.info.run_id && loaded.has(parent)) {
      let list = children.get(parent);
      if (!list) {
        list = [];
        children.set(parent, list);
      }
      list.push(run);
    } else {
      top.push(run);
    }
  }
  const rows: IRunRow[] = [];
  const placed = new Set<string>();
  const visit = (run: IRun, depth: number) => {
    const id = run.info.run_id;
    if (placed.has(id)) {
      return; // a cycle of parent tags: show each run once
    }
    placed.add(id);
    const kids = children.get(id) ?? [];
    const open = kids.length > 0 && expanded.has(id);
    rows.push({ run, depth, childCount: kids.length, expanded: open });
    if (open) {
      for (const kid of kids) {
        visit(kid, depth + 1);
      }
    } else {
      // Collapsed: its descendants count as placed (they are reachable by expanding).
      const hide = (r: IRun) => {
        for (const kid of children.get(r.info.run_id) ?? []) {
          if (!placed.has(kid.info.run_id)) {
            placed.add(kid.info.run_id);
            hide(kid);
          }
        }
      };
      hide(run);
    }
  };
  for (const run of top) {
    visit(run, 0);
  }
  // Runs only reachable through a cycle of parent tags.
  for (const run of runs) {
    if (!placed.has(run.info.run_id)) {
      visit(run, 0);
    }
  }
  return rows;
}
