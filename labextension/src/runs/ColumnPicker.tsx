/**
 * The runs tab's column picker: attributes, metrics, parameters and tags to tick, a search
 * box, and "Automatic" (the columns whose values differ).
 */
import { Button } from '@jupyterlab/ui-components';
import React from 'react';

import { ColumnId } from '../mlflow/format';
import { IRun } from '../mlflow/types';
import { ATTRIBUTE_COLUMNS, availableKeys, columnLabel } from './columns';
import { useTrans } from '../mlflow/views/common';

export function ColumnPicker(props: {
  runs: readonly IRun[];
  /** The columns shown now (picked or automatic). */
  shown: ColumnId[];
  automatic: boolean;
  onChange: (columns: ColumnId[] | null) => void;
}): JSX.Element {
  const trans = useTrans();
  const [open, setOpen] = React.useState(false);
  const [search, setSearch] = React.useState('');
  const root = React.useRef<HTMLDivElement>(null);
  const keys = React.useMemo(() => availableKeys(props.runs), [props.runs]);

  React.useEffect(() => {
    if (!open) {
      return;
    }
    const close = (event: MouseEvent) => {
      if (root.current && !root.current.contains(event.target as Node)) {
        setOpen(false);
      }
    };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, [open]);

  const toggle = (id: ColumnId) => {
    const next = props.shown.includes(id) ? props.shown.filter(c => c !== id) : [...props.shown, id];
    props.onChange(next);
  };
  const match = (key: string) => !search || key.toLowerCase().includes(search.toLowerCase());
  const groups: Array<{ title: string; ids: ColumnId[]; label: (id: ColumnId) => string }> = [
    { title: trans.__('Attributes'), ids: ATTRIBUTE_COLUMNS, label: id => columnLabel(id, trans) },
    { title: trans.__('Metrics'), ids: keys.metrics.filter(match).map(k => `metric:${k}` as ColumnId), label: id => id.slice(7) },
    { title: trans.__('Parameters'), ids: keys.params.filter(match).map(k => `param:${k}` as ColumnId), label: id => id.slice(6) },
    { title: trans.__('Tags'), ids: keys.tags.filter(match).map(k => `tag:${k}` as ColumnId), label: id => id.slice(4) }
  ];

  return (
    <div className="jp-InfinStor-columnPicker" ref={root}>
      <Button
        small
        className="jp-mod-styled"
        aria-expanded={open}
        aria-haspopup="dialog"
        data-testid="infinstor-columns"
        onClick={() => setOpen(!open)}
      >
        {props.automatic
          ? trans.__('Columns: what differs (%1)', props.shown.length)
          : trans.__('Columns (%1)', props.shown.length)}
      </Button>
      {open && (
        <div
          className="jp-InfinStor-columnsMenu"
          role="dialog"
          aria-label={trans.__('Pick columns')}
          data-testid="infinstor-columns-menu"
          onKeyDown={e => {
            if (e.key === 'Escape') {
              setOpen(false);
            }
          }}
        >
          <div className="jp-InfinStor-columnsMenuHead">
            <input
              type="search"
              className="jp-InfinStor-input"
              placeholder={trans.__('Find a metric, parameter or tag')}
              aria-label={trans.__('Find a column')}
              value={search}
              autoFocus
              data-testid="infinstor-columns-search"
              onChange={e => setSearch(e.target.value)}
            />
            <label className="jp-InfinStor-columnsAuto">
              <input
                type="checkbox"
                checked={props.automatic}
                data-testid="infinstor-columns-auto"
                onChange={() => props.onChange(props.automatic ? props.shown : null)}
              />{' '}
              {trans.__('Automatic: the metrics and parameters that differ')}
            </label>
          </div>
          {groups.map(g =>
            g.ids.length ? (
              <fieldset key={g.title}>
                <legend>{g.title}</legend>
                {g.ids.map(id => (
                  <label key={id} data-column={id}>
                    <input type="checkbox" checked={props.shown.includes(id)} onChange={() => toggle(id)} /> {g.label(id)}
                  </label>
                ))}
              </fieldset>
            ) : null
          )}
        </div>
      )}
    </div>
  );
}
