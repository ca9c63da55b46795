/**
 * How a user set up the runs of an experiment (columns, widths, sort, filter, the sidebar's
 * metric), kept per experiment in JupyterLab's state database: the same in the sidebar and
 * the runs tab, after switching tabs, closing the tab and reloading the page.
 */
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { ColumnId } from '../mlflow/format';

export interface ISort {
  column: ColumnId;
  desc: boolean;
}

export interface IRunsViewSettings {
  /** The columns the user picked, in order; null: the automatic choice (what differs). */
  columns: ColumnId[] | null;
  /** Column widths in px, by column id. */
  widths: Record<string, number>;
  sort: ISort;
  /** The filter box's text (plain text or MLflow search syntax). */
  filter: string;
  /** The metric the sidebar's compact list shows; null: the first one. */
  listMetric: string | null;
}

export const DEFAULT_SORT: ISort = { column: 'start', desc: true };

export function defaultSettings(): IRunsViewSettings {
  return { columns: null, widths: {}, sort: { ...DEFAULT_SORT }, filter: '', listMetric: null };
}

/** Key prefix in the state database. */
export const STATE_PREFIX = 'infinstor-jupyterlab:runs-view:';

const COLUMN_ID = /^(status|name|start|duration|user|source|(param|metric|tag):.+)$/;

/**
 * Settings read back from the state database, with anything malformed (an older version, a
 * hand-edited workspace) replaced by its default.
 */
export function sanitizeSettings(value: unknown): IRunsViewSettings {
  const out = defaultSettings();
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return out;
  }
  const v = value as Record<string, any>;
  if (Array.isArray(v.columns)) {
    out.columns = v.columns.filter((c: unknown): c is ColumnId => typeof c === 'string' && COLUMN_ID.test(c));
  }
  if (v.widths && typeof v.widths === 'object' && !Array.isArray(v.widths)) {
    for (const [k, w] of Object.entries(v.widths)) {
      if (typeof w === 'number' && Number.isFinite(w) && w >= 20 && w <= 2000) {
        out.widths[k] = Math.round(w);
      }
    }
  }
  if (v.sort && typeof v.sort.column === 'string' && COLUMN_ID.test(v.sort.column)) {
    out.sort = { column: v.sort.column as ColumnId, desc: !!v.sort.desc };
  }
  if (typeof v.filter === 'string') {
    out.filter = v.filter;
  }
  if (typeof v.listMetric === 'string') {
    out.listMetric = v.listMetric;
  }
  return out;
}

/**
 * The settings of every experiment's runs views. Reads are synchronous (from memory, once
 * `load` has read the state database); every change is saved and announced, so the sidebar
 * list and the runs tab of one experiment stay in step.
 */
export class RunsViewStateStore {
  constructor(options: { state: IStateDB | null }) {
    this._state = options.state;
  }

  /** Emits the experiment id whose settings changed. */
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  /** The settings of an experiment (defaults until `load` resolved). */
  get(experimentId: string): IRunsViewSettings {
    return this._cache.get(experimentId) ?? defaultSettings();
  }

  /** Read an experiment's settings from the state database (once; later calls are instant). */
  load(experimentId: string): Promise<IRunsViewSettings> {
    let pending = this._loading.get(experimentId);
    if (!pending) {
      pending = this._fetch(experimentId);
      this._loading.set(experimentId, pending);
    }
    return pending;
  }

  /** Change some settings of an experiment; saved to the state database. */
  update(experimentId: string, patch: Partial<IRunsViewSettings>): IRunsViewSettings {
    const next = { ...this.get(experimentId), ...patch };
    this._cache.set(experimentId, next);
    this._changed.emit(experimentId);
    if (this._state) {
      this._state
        .save(STATE_PREFIX + experimentId, next as unknown as ReadonlyPartialJSONObject)
        .catch(reason => console.warn('InfinStor: could not save the runs view settings.', reason));
    }
    return next;
  }

  private async _fetch(experimentId: string): Promise<IRunsViewSettings> {
    let stored: unknown = undefined;
    if (this._state) {
      try {
        stored = await this._state.fetch(STATE_PREFIX + experimentId);
      } catch (reason) {
        console.warn('InfinStor: could not read the runs view settings.', reason);
      }
    }
    // A change made while the database was read wins.
    if (!this._cache.has(experimentId)) {
      this._cache.set(experimentId, sanitizeSettings(stored));
      if (stored !== undefined) {
        this._changed.emit(experimentId);
      }
    }
    return this.get(experimentId);
  }

  private _state: IStateDB | null;
  private _cache = new Map<string, IRunsViewSettings>();
  private _loading = new Map<string, Promise<IRunsViewSettings>>();
  private _changed = new Signal<this, string>(this);
}
