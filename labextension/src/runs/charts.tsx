/**
 * Metric charts (uPlot): lines with a hover read-out of every value at the cursor, smoothing
 * and a log scale; a metric logged once shown as its value, not as a line; and a scatter of
 * a parameter against a metric, one point per run.
 */
import React from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { formatMetric, formatTimestamp, numberFormatter } from '../mlflow/format';
import { IRun } from '../mlflow/types';
import {
  alignScatter,
  IChartSeries,
  isSinglePoint,
  prepareLines,
  scatterData,
  seriesColors,
  XAxis
} from './chartData';
import { useTrans } from '../mlflow/views/common';

export interface IChartSettings {
  xAxis: XAxis;
  /** 0 (none) to 0.99. */
  smoothing: number;
  log: boolean;
}

/** Steps are whole numbers: no tick at step 0.5. */
const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3, 1e4, 2e4, 25e3, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7];

export const DEFAULT_CHART_SETTINGS: IChartSettings = { xAxis: 'step', smoothing: 0, log: false };

function cssVar(name: string, fallback = '--jp-ui-font-color1'): string {
  const style = getComputedStyle(document.body);
  return style.getPropertyValue(name).trim() || style.getPropertyValue(fallback).trim() || 'currentColor';
}

/** Whether JupyterLab shows a dark theme. */
export function isDarkTheme(): boolean {
  return document.body.dataset.jpThemeLight === 'false';
}

/**
 * The current theme's name; changes when the user switches theme (charts re-read colours).
 */
export function useThemeKey(): string {
  const read = () => `${document.body.dataset.jpThemeName ?? ''}|${document.body.dataset.jpThemeLight ?? ''}`;
  const [key, setKey] = React.useState(read);
  React.useEffect(() => {
    const observer = new MutationObserver(() => setKey(read()));
    observer.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light'] });
    return () => observer.disconnect();
  }, []);
  return key;
}

/** Run colours for the current theme. */
export function useRunColors(count: number): string[] {
  const theme = useThemeKey();
  return React.useMemo(() => seriesColors(count, isDarkTheme()), [count, theme]);
}

// -- hover read-out -------------------------------------------------------------------------------

interface IReadout {
  /** The plot series index of each named series. */
  series: number[];
  names: string[];
  colors: string[];
  xLabel: (x: number) => string;
  format: (v: number) => string;
  maxRows?: number;
}

/**
 * A uPlot plugin: a box by the cursor with the x value and every series' value there,
 * largest first (names set as text, never as HTML: run names are user data).
 */
function readoutPlugin(readout: IReadout): uPlot.Plugin {
  let tip: HTMLDivElement | null = null;
  const hide = () => {
    if (tip) {
      tip.style.display = 'none';
    }
  };
  return {
    hooks: {
      init: u => {
        tip = document.createElement('div');
        tip.className = 'jp-InfinStor-chartTip';
        tip.setAttribute('data-testid', 'infinstor-chart-tip');
        tip.style.display = 'none';
        u.over.parentElement?.appendChild(tip);
        u.over.addEventListener('mouseleave', hide);
      },
      setCursor: u => {
        const idx = u.cursor.idx;
        const left = u.cursor.left ?? -1;
        const top = u.cursor.top ?? -1;
        if (!tip || idx === null || idx === undefined || left < 0) {
          hide();
          return;
        }
        const rows: Array<{ name: string; color: string; value: number }> = [];
        readout.series.forEach((si, k) => {
          const v = u.data[si]?.[idx];
          if (v !== null && v !== undefined && Number.isFinite(v)) {
            rows.push({ name: readout.names[k], color: readout.colors[k], value: v as number });
          }
        });
        if (!rows.length) {
          hide();
          return;
        }
        rows.sort((a, b) => b.value - a.value);
        const max = readout.maxRows ?? 12;
        tip.replaceChildren();
        const head = document.createElement('div');
        head.className = 'jp-InfinStor-chartTipHead';
        head.textContent = readout.xLabel(u.data[0][idx] as number);
        tip.appendChild(head);
        for (const row of rows.slice(0, max)) {
          const line = document.createElement('div');
          line.className = 'jp-InfinStor-chartTipRow';
          const dot = document.createElement('span');
          dot.className = 'jp-InfinStor-chartTipDot';
          dot.style.background = row.color;
          const name = document.createElement('span');
          name.className = 'jp-InfinStor-chartTipName';
          name.textContent = row.name;
          const value = document.createElement('span');
          value.className = 'jp-InfinStor-chartTipValue';
          value.textContent = readout.format(row.value);
          line.append(dot, name, value);
          tip.appendChild(line);
        }
        if (rows.length > max) {
          const more = document.createElement('div');
          more.className = 'jp-InfinStor-chartTipMore';
          more.textContent = `+${rows.length - max}`;
          tip.appendChild(more);
        }
        tip.style.display = 'block';
        const offsetLeft = u.over.offsetLeft;
        const offsetTop = u.over.offsetTop;
        const width = tip.offsetWidth;
        const x = left + 14 + width > u.over.clientWidth ? left - 14 - width : left + 14;
        tip.style.left = `${Math.max(0, offsetLeft + x)}px`;
        tip.style.top = `${offsetTop + Math.max(0, Math.min(top + 10, u.over.clientHeight - tip.offsetHeight))}px`;
      }
    }
  };
}

// -- the uPlot canvas -----------------------------------------------------------------------------

/**
 * A uPlot chart that follows its container's width and the theme; rebuilt when its options
 * or data change.
 */
function UPlotCanvas(props: {
  build: (width: number) => uPlot.Options;
  data: uPlot.AlignedData;
  label: string;
}): JSX.Element {
  const container = React.useRef<HTMLDivElement>(null);
  const [width, setWidth] = React.useState(0);
  const theme = useThemeKey();
  React.useEffect(() => {
    const el = container.current;
    if (!el) {
      return;
    }
    const observer = new ResizeObserver(() => setWidth(Math.floor(el.clientWidth)));
    observer.observe(el);
    setWidth(Math.floor(el.clientWidth));
    return () => observer.disconnect();
  }, []);
  React.useEffect(() => {
    const el = container.current;
    if (!el || width <= 0) {
      return;
    }
    const plot = new uPlot(props.build(width), props.data, el);
    return () => plot.destroy();
  }, [props.build, props.data, width, theme]);
  return <div ref={container} className="jp-InfinStor-chartCanvas" role="img" aria-label={props.label} />;
}

function axisStyle(el: HTMLElement | null): { stroke: string; grid: string; font: string } {
  // uPlot needs a pixel font size (it scales it for the device pixel ratio).
  const size = el ? parseFloat(getComputedStyle(el).fontSize) : 13;
  const px = Math.round((size || 13) * 0.85);
  return {
    stroke: cssVar('--jp-ui-font-color2'),
    grid: cssVar('--jp-border-color2'),
    font: `${px}px ${cssVar('--jp-ui-font-family')}`
  };
}

function axis(style: ReturnType<typeof axisStyle>, extra: uPlot.Axis = {}): uPlot.Axis {
  return {
    stroke: style.stroke,
    grid: { stroke: style.grid, width: 1 },
    ticks: { stroke: style.grid, width: 1 },
    font: style.font,
    labelFont: style.font,
    ...extra
  };
}

// -- metric charts --------------------------------------------------------------------------------

/**
 * A metric's history for one or more series (runs, or metrics of one run). With one point per
 * series it shows the values instead of a line.
 */
export function MetricChart(props: {
  title: string;
  series: IChartSeries[];
  settings: IChartSettings;
  height?: number;
  /** An HTML legend below the chart (for several series without a shared legend). */
  legend?: boolean;
  testid?: string;
}): JSX.Element {
  const trans = useTrans();
  const { series, settings } = props;
  const single = isSinglePoint(series);
  const data = React.useMemo(() => prepareLines(series, settings), [series, settings]);
  const build = React.useCallback(
    (width: number): uPlot.Options => {
      const style = axisStyle(document.body);
      const smoothing = settings.smoothing > 0;
      const plotSeries: uPlot.Series[] = [{ label: settings.xAxis === 'step' ? trans.__('step') : trans.__('time') }];
      const shown: number[] = [];
      for (const s of series) {
        shown.push(plotSeries.length);
        plotSeries.push({
          label: s.label,
          stroke: s.color,
          width: 1.6,
          spanGaps: true,
          points: { show: s.points.length < 40, size: 4, fill: s.color }
        });
        if (smoothing) {
          plotSeries.push({ label: s.label, stroke: `${s.color}44`, width: 1, spanGaps: true, points: { show: false } });
        }
      }
      const fmt = numberFormatter(series.flatMap(s => s.points.map(p => p.value)));
      return {
        width,
        height: props.height ?? 200,
        scales: {
          x: { time: settings.xAxis === 'time' },
          y: settings.log ? { distr: 3, log: 10 } : {}
        },
        axes: [
          axis(style, settings.xAxis === 'step' ? { label: trans.__('step'), incrs: STEP_INCREMENTS } : {}),
          axis(style, { size: 56, values: (_u, vals) => vals.map(v => (v === null ? '' : formatMetric(v))) })
        ],
        legend: { show: false },
        cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
        focus: { alpha: 0.35 },
        series: plotSeries,
        plugins: [
          readoutPlugin({
            series: shown,
            names: series.map(s => s.label),
            colors: series.map(s => s.color),
            xLabel: x =>
              settings.xAxis === 'step' ? trans.__('step %1', x) : formatTimestamp(x * 1000),
            format: v => fmt(v)
          })
        ]
      };
    },
    [series, settings, props.height, trans]
  );
  return (
    <figure className="jp-InfinStor-chart" aria-label={props.title} data-testid={props.testid ?? 'infinstor-chart'}>
      <figcaption className="jp-InfinStor-chartTitle" title={props.title}>
        {props.title}
      </figcaption>
      {single ? (
        <SingleValues series={series} />
      ) : (
        <UPlotCanvas build={build} data={data as uPlot.AlignedData} label={trans.__('Chart of %1', props.title)} />
      )}
      {props.legend && series.length > 1 && <Legend items={series.map(s => ({ label: s.label, color: s.color }))} />}
    </figure>
  );
}

/**
 * A metric logged once per series: its value (one series), or the values side by side with
 * bars (several), largest first.
 */
function SingleValues(props: { series: IChartSeries[] }): JSX.Element {
  const trans = useTrans();
  const present = props.series.filter(s => s.points.length === 1);
  const fmt = numberFormatter(present.map(s => s.points[0].value));
  if (props.series.length === 1) {
    const point = present[0]?.points[0];
    return (
      <div className="jp-InfinStor-singleValue" data-testid="infinstor-chart-single">
        <span className="jp-InfinStor-singleValueNumber">{point ? fmt(point.value) : '—'}</span>
        {point && <span className="jp-InfinStor-hint">{trans.__('logged once, at step %1', point.step)}</span>}
      </div>
    );
  }
  const rows = present.map(s => ({ label: s.label, color: s.color, value: s.points[0].value })).sort((a, b) => b.value - a.value);
  const most = Math.max(...rows.map(r => Math.abs(r.value)).filter(Number.isFinite), 0);
  return (
    <ul className="jp-InfinStor-singleValues" data-testid="infinstor-chart-single" aria-label={trans.__('Values, largest first')}>
      {rows.map((r, i) => (
        <li key={i} className="jp-InfinStor-singleValuesRow">
          <span className="jp-InfinStor-legendDot" style={{ background: r.color }} aria-hidden="true" />
          <span className="jp-InfinStor-singleValuesName" title={r.label}>
            {r.label}
          </span>
          <span className="jp-InfinStor-singleValuesBar" aria-hidden="true">
            <span style={{ width: `${most > 0 && Number.isFinite(r.value) ? (Math.abs(r.value) / most) * 100 : 0}%`, background: r.color }} />
          </span>
          <span className="jp-InfinStor-singleValuesValue">{fmt(r.value)}</span>
        </li>
      ))}
    </ul>
  );
}

export function Legend(props: { items: Array<{ label: string; color: string }>; testid?: string }): JSX.Element {
  const trans = useTrans();
  return (
    <ul className="jp-InfinStor-legend" aria-label={trans.__('Legend')} data-testid={props.testid ?? 'infinstor-chart-legend'}>
      {props.items.map((item, i) => (
        <li key={i} className="jp-InfinStor-legendItem" title={item.label}>
          <span className="jp-InfinStor-legendDot" style={{ background: item.color }} aria-hidden="true" />
          <span className="jp-InfinStor-legendLabel">{item.label}</span>
        </li>
      ))}
    </ul>
  );
}

/**
 * Step or time, smoothing, log scale: for every chart of a view at once.
 */
export function ChartControls(props: {
  settings: IChartSettings;
  onChange: (settings: IChartSettings) => void;
  idPrefix: string;
}): JSX.Element {
  const trans = useTrans();
  const { settings, onChange } = props;
  return (
    <div className="jp-InfinStor-toolbar jp-InfinStor-chartControls" data-testid="infinstor-chart-controls">
      <span role="radiogroup" aria-label={trans.__('X axis')} className="jp-InfinStor-radioGroup">
        <span>{trans.__('X axis:')}</span>
        {(['step', 'time'] as const).map(x => (
          <label key={x}>
            <input
              type="radio"
              name={`${props.idPrefix}-xaxis`}
              checked={settings.xAxis === x}
              onChange={() => onChange({ ...settings, xAxis: x })}
            />{' '}
            {x === 'step' ? trans.__('Step') : trans.__('Time')}
          </label>
        ))}
      </span>
      <label className="jp-InfinStor-smoothing">
        {trans.__('Smoothing')}{' '}
        <input
          type="range"
          min={0}
          max={0.95}
          step={0.05}
          value={settings.smoothing}
          aria-valuetext={settings.smoothing.toFixed(2)}
          data-testid="infinstor-chart-smoothing"
          onChange={e => onChange({ ...settings, smoothing: Number(e.target.value) })}
        />{' '}
        <span className="jp-InfinStor-hint">{settings.smoothing.toFixed(2)}</span>
      </label>
      <label>
        <input
          type="checkbox"
          checked={settings.log}
          data-testid="infinstor-chart-log"
          onChange={() => onChange({ ...settings, log: !settings.log })}
        />{' '}
        {trans.__('Log scale')}
      </label>
    </div>
  );
}

// -- scatter --------------------------------------------------------------------------------------

/**
 * A parameter (x) against a metric's latest value (y), one point per run in its colour.
 * Numeric parameters on a linear axis (logarithmic when they span two decades or more, as
 * learning rates do), others as categories.
 */
export function ScatterChart(props: {
  runs: readonly IRun[];
  names: string[];
  colors: string[];
  param: string;
  metric: string;
  height?: number;
}): JSX.Element {
  const trans = useTrans();
  const { runs, param, metric, names, colors } = props;
  const scatter = React.useMemo(() => scatterData(runs, param, metric), [runs, param, metric]);
  const data = React.useMemo(() => alignScatter(scatter, runs.length), [scatter, runs.length]);
  const build = React.useCallback(
    (width: number): uPlot.Options => {
      const style = axisStyle(document.body);
      const categories = scatter.categories;
      const xs = scatter.points.map(p => p.x);
      const logX = !categories && xs.length > 1 && xs.every(x => x > 0) && Math.max(...xs) / Math.min(...xs) >= 100;
      const fmtY = numberFormatter(scatter.points.map(p => p.y));
      const xScale: uPlot.Scale = categories
        ? { time: false, range: () => [-0.5, Math.max(0.5, categories.length - 0.5)] }
        : logX
          ? { time: false, distr: 3, log: 10 }
          : { time: false };
      return {
        width,
        height: props.height ?? 260,
        scales: { x: xScale, y: {} },
        axes: [
          axis(style, {
            label: param,
            ...(categories
              ? {
                  splits: () => categories.map((_, i) => i),
                  values: (_u: uPlot, vals: number[]) => vals.map(v => categories[v] ?? '')
                }
              : { values: (_u: uPlot, vals: number[]) => vals.map(v => (v === null ? '' : formatMetric(v))) })
          }),
          axis(style, { label: metric, size: 60, values: (_u, vals) => vals.map(v => (v === null ? '' : formatMetric(v))) })
        ],
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, focus: { prox: 16 } },
        series: [
          { label: param },
          ...runs.map((_, i) => ({
            label: names[i],
            stroke: colors[i],
            paths: () => null,
            points: { show: true, size: 9, space: 0, fill: colors[i], stroke: colors[i] }
          }))
        ],
        plugins: [
          readoutPlugin({
            series: runs.map((_, i) => i + 1),
            names,
            colors,
            xLabel: x => `${param} = ${categories ? categories[x] ?? '' : formatMetric(x)}`,
            format: v => fmtY(v)
          })
        ]
      };
    },
    [scatter, runs, names, colors, param, metric, props.height]
  );
  return (
    <figure className="jp-InfinStor-chart jp-InfinStor-scatter" aria-label={trans.__('%1 against %2', metric, param)} data-testid="infinstor-scatter">
      <figcaption className="jp-InfinStor-chartTitle">{trans.__('%1 against %2', metric, param)}</figcaption>
      {scatter.points.length === 0 ? (
        <p className="jp-InfinStor-hint">{trans.__('No run has both %1 and %2.', param, metric)}</p>
      ) : (
        <UPlotCanvas build={build} data={data as uPlot.AlignedData} label={trans.__('Scatter of %1 against %2', metric, param)} />
      )}
      {scatter.missing > 0 && (
        <p className="jp-InfinStor-hint">{trans.__('%1 runs without %2 or %3 are left out.', scatter.missing, param, metric)}</p>
      )}
    </figure>
  );
}
