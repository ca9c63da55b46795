import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Button, downloadIcon, fileIcon, folderIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React from 'react';

import { IMlflowClient } from '../../tokens';
import { formatBytes, htmlPreviewDocument, IPreviewTheme, parseCsv, previewKind } from '../format';
import { IFileInfo } from '../types';
import { EmptyState, ErrorState, LoadingState, useTrans } from './common';

/** Largest artifact previewed as text (bytes). */
export const MAX_PREVIEW_BYTES = 5 * 1024 * 1024;

/**
 * Artifact browser: a lazily expanded tree and a preview of the selected file.
 */
export function ArtifactBrowser(props: {
  client: IMlflowClient;
  runId: string;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const trans = useTrans();
  const [selected, setSelected] = React.useState<IFileInfo | null>(null);
  return (
    <div className="jp-InfinStor-artifacts" data-testid="infinstor-artifacts">
      <div className="jp-InfinStor-artifactTree" role="tree" aria-label={trans.__('Artifacts')}>
        <ArtifactDir client={props.client} runId={props.runId} path="" depth={0} selected={selected} onSelect={setSelected} />
      </div>
      <div className="jp-InfinStor-artifactPreview" aria-live="polite">
        {selected ? (
          <ArtifactPreview key={selected.path} client={props.client} runId={props.runId} file={selected} rendermime={props.rendermime} />
        ) : (
          <EmptyState title={trans.__('Select an artifact to preview it.')} hint={trans.__('Images, text, JSON, CSV, HTML and notebooks are shown here.')} />
        )}
      </div>
    </div>
  );
}

function ArtifactDir(props: {
  client: IMlflowClient;
  runId: string;
  path: string;
  depth: number;
  selected: IFileInfo | null;
  onSelect: (f: IFileInfo) => void;
}): JSX.Element {
  const trans = useTrans();
  const [files, setFiles] = React.useState<IFileInfo[] | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const [open, setOpen] = React.useState<Record<string, boolean>>({});
  const load = React.useCallback(() => {
    setError(null);
    props.client.listArtifacts(props.runId, props.path).then(setFiles, setError);
  }, [props.client, props.runId, props.path]);
  React.useEffect(load, [load]);
  if (error) {
    return <ErrorState error={error} what={trans.__('Could not list the artifacts.')} compact onRetry={load} />;
  }
  if (!files) {
    return <LoadingState label={trans.__('Listing artifacts…')} />;
  }
  if (!files.length && props.depth === 0) {
    return <EmptyState title={trans.__('This run has no artifacts.')} hint={trans.__('Log some with mlflow.log_artifact() or mlflow.log_figure().')} />;
  }
  return (
    <ul role="group" className="jp-InfinStor-treeGroup">
      {files.map(f => {
        const name = f.path.slice(f.path.lastIndexOf('/') + 1);
        const isOpen = !!open[f.path];
        return (
          <li key={f.path} role="none">
            <button
              role="treeitem"
              aria-expanded={f.is_dir ? isOpen : undefined}
              aria-selected={props.selected?.path === f.path}
              className={`jp-InfinStor-treeItem${props.selected?.path === f.path ? ' jp-mod-selected' : ''}`}
              style={{ paddingLeft: 6 + props.depth * 14 }}
              data-testid="infinstor-artifact"
              data-path={f.path}
              onClick={() => (f.is_dir ? setOpen(o => ({ ...o, [f.path]: !isOpen })) : props.onSelect(f))}
            >
              {f.is_dir ? (
                <folderIcon.react tag="span" className="jp-InfinStor-treeIcon" />
              ) : (
                <fileIcon.react tag="span" className="jp-InfinStor-treeIcon" />
              )}
              <span className="jp-InfinStor-treeName">{name}</span>
              {!f.is_dir && <span className="jp-InfinStor-hint">{formatBytes(f.file_size)}</span>}
            </button>
            {f.is_dir && isOpen && (
              <ArtifactDir {...props} path={f.path} depth={props.depth + 1} />
            )}
          </li>
        );
      })}
    </ul>
  );
}

type Loaded =
  | { kind: 'image'; url: string }
  | { kind: 'text' | 'json' | 'html' | 'notebook'; text: string }
  | { kind: 'csv'; rows: string[][]; truncated: boolean }
  | { kind: 'none' }
  | { kind: 'too-big' };

function ArtifactPreview(props: {
  client: IMlflowClient;
  runId: string;
  file: IFileInfo;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const trans = useTrans();
  const { client, runId, file } = props;
  const kind = previewKind(file.path);
  const [loaded, setLoaded] = React.useState<Loaded | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const [downloading, setDownloading] = React.useState(false);

  React.useEffect(() => {
    let url: string | null = null;
    let cancelled = false;
    const size = Number(file.file_size ?? 0);
    if (kind === 'none') {
      setLoaded({ kind: 'none' });
      return;
    }
    if (kind !== 'image' && size > MAX_PREVIEW_BYTES) {
      setLoaded({ kind: 'too-big' });
      return;
    }
    client
      .fetchArtifact(runId, file.path)
      .then(async response => {
        if (kind === 'image') {
          const blob = await response.blob();
          const typed = file.path.toLowerCase().endsWith('.svg') ? new Blob([blob], { type: 'image/svg+xml' }) : blob;
          url = URL.createObjectURL(typed);
          return { kind: 'image', url } as Loaded;
        }
        const text = await response.text();
        if (kind === 'csv') {
          return { kind: 'csv', ...parseCsv(text, 500) } as Loaded;
        }
        if (kind === 'json') {
          try {
            return { kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2) } as Loaded;
          } catch {
            return { kind: 'text', text } as Loaded;
          }
        }
        return { kind, text } as Loaded;
      })
      .then(
        l => (cancelled ? undefined : setLoaded(l)),
        e => (cancelled ? undefined : setError(e))
      );
    return () => {
      cancelled = true;
      if (url) {
        URL.revokeObjectURL(url);
      }
    };
  }, [client, runId, file.path]);

  const download = async () => {
    setDownloading(true);
    try {
      const blob = await (await client.fetchArtifact(runId, file.path)).blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = file.path.slice(file.path.lastIndexOf('/') + 1);
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      setError(e);
    } finally {
      setDownloading(false);
    }
  };

  return (
    <div className="jp-InfinStor-preview" data-testid="infinstor-artifact-preview" data-kind={kind}>
      <div className="jp-InfinStor-previewHeader">
        <span className="jp-InfinStor-previewPath" title={file.path}>
          {file.path}
        </span>
        <span className="jp-InfinStor-hint">{formatBytes(file.file_size)}</span>
        <Button
          small
          minimal
          className="jp-InfinStor-iconButton"
          aria-label={trans.__('Download %1', file.path)}
          title={trans.__('Download %1', file.path)}
          data-testid="infinstor-artifact-download"
          disabled={downloading}
          onClick={() => void download()}
        >
          <downloadIcon.react tag="span" className="jp-InfinStor-buttonIcon" />
        </Button>
      </div>
      {error ? <ErrorState error={error} what={trans.__('Could not load the artifact.')} compact /> : null}
      {!loaded && !error && <LoadingState label={trans.__('Loading preview…')} />}
      {loaded && <PreviewBody loaded={loaded} path={file.path} rendermime={props.rendermime} />}
    </div>
  );
}

function PreviewBody(props: { loaded: Loaded; path: string; rendermime: IRenderMimeRegistry | null }): JSX.Element {
  const trans = useTrans();
  const { loaded } = props;
  switch (loaded.kind) {
    case 'image':
      return <img className="jp-InfinStor-previewImage" src={loaded.url} alt={props.path} />;
    case 'text':
    case 'json':
      return (
        <pre className="jp-InfinStor-previewText" tabIndex={0} aria-label={trans.__('Contents of %1', props.path)}>
          {loaded.text}
        </pre>
      );
    case 'html':
      return <HtmlPreview html={loaded.text} path={props.path} />;
    case 'csv': {
      const [head, ...body] = loaded.rows;
      return (
        <div className="jp-InfinStor-previewTable" tabIndex={0} aria-label={trans.__('Table %1', props.path)}>
          <table className="jp-InfinStor-table">
            <thead>
              <tr>{(head ?? []).map((h, i) => <th key={i} scope="col">{h}</th>)}</tr>
            </thead>
            <tbody>
              {body.map((r, i) => (
                <tr key={i}>{r.map((c, j) => <td key={j}>{c}</td>)}</tr>
              ))}
            </tbody>
          </table>
          {loaded.truncated && <p className="jp-InfinStor-hint">{trans.__('Only the first 500 rows are shown; download the file for the rest.')}</p>}
        </div>
      );
    }
    case 'notebook':
      return <NotebookPreview text={loaded.text} rendermime={props.rendermime} />;
    case 'too-big':
      return <EmptyState title={trans.__('Too large to preview.')} hint={trans.__('Download it instead.')} />;
    default:
      return <EmptyState title={trans.__('No preview for this kind of file.')} hint={trans.__('Download it to open it.')} />;
  }
}

/**
 * The lab theme's colours, read again whenever the theme changes.
 */
function usePreviewTheme(): IPreviewTheme {
  const read = (): IPreviewTheme => {
    const body = document.body;
    const style = getComputedStyle(body);
    return {
      light: body.dataset.jpThemeLight !== 'false',
      background: style.getPropertyValue('--jp-layout-color0'),
      color: style.getPropertyValue('--jp-content-font-color1'),
      link: style.getPropertyValue('--jp-content-link-color'),
      font: style.getPropertyValue('--jp-content-font-family')
    };
  };
  const [theme, setTheme] = React.useState(read);
  React.useEffect(() => {
    // JupyterLab marks the theme on <body> (data-jp-theme-light, data-jp-theme-name).
    const observer = new MutationObserver(() => setTheme(read()));
    observer.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-light', 'data-jp-theme-name'] });
    return () => observer.disconnect();
  }, []);
  return theme;
}

/**
 * An HTML artifact in an empty sandbox (no scripts, no same-origin access, no forms, no
 * navigation), starting from the lab theme's colours.
 */
function HtmlPreview(props: { html: string; path: string }): JSX.Element {
  const trans = useTrans();
  const theme = usePreviewTheme();
  const doc = React.useMemo(() => htmlPreviewDocument(props.html, theme), [props.html, theme]);
  return (
    <iframe
      className="jp-InfinStor-previewFrame"
      sandbox=""
      srcDoc={doc}
      title={trans.__('Preview of %1', props.path)}
      data-theme={theme.light ? 'light' : 'dark'}
    />
  );
}

/**
 * A notebook rendered read-only: sources as text, markdown and outputs through
 * the lab's rendermime registry as untrusted content (sanitized, no scripts).
 */
function NotebookPreview(props: { text: string; rendermime: IRenderMimeRegistry | null }): JSX.Element {
  const trans = useTrans();
  const ref = React.useRef<HTMLDivElement>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    const host = ref.current;
    if (!host) {
      return;
    }
    const widgets: Widget[] = [];
    let nb: any;
    try {
      nb = JSON.parse(props.text);
    } catch (e) {
      setError(trans.__('This notebook is not valid JSON.'));
      return;
    }
    const rm = props.rendermime;
    const source = (s: unknown) => (Array.isArray(s) ? s.join('') : String(s ?? ''));
    const render = (data: Record<string, any>, into: HTMLElement) => {
      if (!rm) {
        const pre = document.createElement('pre');
        pre.textContent = source(data['text/plain'] ?? data['text/markdown'] ?? '');
        into.appendChild(pre);
        return;
      }
      const mime = rm.preferredMimeType(data, 'ensure');
      if (!mime) {
        return;
      }
      const renderer = rm.createRenderer(mime);
      const model = new MimeModel({ data: { [mime]: data[mime] }, trusted: false });
      void renderer.renderModel(model);
      const slot = document.createElement('div');
      into.appendChild(slot);
      Widget.attach(renderer, slot);
      widgets.push(renderer);
    };
    for (const cell of nb.cells ?? []) {
      const div = document.createElement('div');
      div.className = `jp-InfinStor-nbCell jp-InfinStor-nbCell-${cell.cell_type}`;
      host.appendChild(div);
      if (cell.cell_type === 'markdown') {
        render({ 'text/markdown': source(cell.source) }, div);
        continue;
      }
      const pre = document.createElement('pre');
      pre.className = 'jp-InfinStor-nbSource';
      pre.textContent = source(cell.source);
      div.appendChild(pre);
      for (const output of cell.outputs ?? []) {
        const out = document.createElement('div');
        out.className = 'jp-InfinStor-nbOutput';
        div.appendChild(out);
        if (output.output_type === 'stream') {
          render({ 'text/plain': source(output.text) }, out);
        } else if (output.output_type === 'error') {
          render({ 'application/vnd.jupyter.stderr': (output.traceback ?? []).join('\n') || `${output.ename}: ${output.evalue}` }, out);
        } else if (output.data) {
          const data: Record<string, any> = {};
          for (const [k, v] of Object.entries(output.data)) {
            data[k] = typeof v === 'string' || Array.isArray(v) ? (k.startsWith('image/') || k.endsWith('json') ? v : source(v)) : v;
          }
          render(data, out);
        }
      }
    }
    return () => {
      widgets.forEach(w => w.dispose());
      host.textContent = '';
    };
  }, [props.text, props.rendermime]);
  return (
    <div className="jp-InfinStor-nbPreview" data-testid="infinstor-notebook-preview" aria-label={trans.__('Notebook (read-only)')}>
      {error && <p role="alert">{error}</p>}
      <div ref={ref} className="jp-RenderedHTMLCommon" />
    </div>
  );
}
