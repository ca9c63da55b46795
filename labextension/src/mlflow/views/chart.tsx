import React from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { formatMetric } from '../format';
import { IMetricPoint } from '../types';

export type XAxis = 'step' | 'time';

export interface IChartSeries {
  label: string;
  points: IMetricPoint[];
}

/**
 * Theme colours for series, read from JupyterLab CSS variables.
 */
const SERIES_VARS = [
  '--jp-brand-color1',
  '--jp-warn-color1',
  '--jp-success-color1',
  '--jp-error-color1',
  '--jp-accent-color1',
  '--jp-brand-color3',
  '--jp-warn-color3',
  '--jp-success-color3',
  '--jp-ui-font-color2'
];

function cssVar(name: string, fallbackVar = '--jp-ui-font-color1'): string {
  const style = getComputedStyle(document.body);
  return style.getPropertyValue(name).trim() || style.getPropertyValue(fallbackVar).trim() || 'currentColor';
}

/**
 * Merge series onto one x axis (uPlot needs aligned data); gaps are `null`.
 */
export function alignSeries(series: IChartSeries[], xAxis: XAxis): uPlot.AlignedData {
  const xKey = (p: IMetricPoint) => (xAxis === 'step' ? p.step : p.timestamp / 1000);
  const xs = new Set<number>();
  for (const s of series) {
    for (const p of s.points) {
      xs.add(xKey(p));
    }
  }
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((v, i) => [v, i]));
  const ys = series.map(s => {
    const y: (number | null)[] = new Array(x.length).fill(null);
    for (const p of s.points) {
      y[index.get(xKey(p))!] = Number.isFinite(p.value) ? p.value : null;
    }
    return y;
  });
  return [x, ...ys] as uPlot.AlignedData;
}

/**
 * Watch the JupyterLab theme (light/dark) so charts re-read their colours.
 */
function useThemeKey(): string {
  const [key, setKey] = React.useState(() => document.body.dataset.jpThemeName ?? '');
  React.useEffect(() => {
    const observer = new MutationObserver(() => setKey(document.body.dataset.jpThemeName ?? ''));
    observer.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light'] });
    return () => observer.disconnect();
  }, []);
  return key;
}

/**
 * A uPlot line chart of metric histories (one or several series).
 */
export function MetricChart(props: {
  series: IChartSeries[];
  xAxis: XAxis;
  title: string;
  height?: number;
}): JSX.Element {
  const container = React.useRef<HTMLDivElement>(null);
  const plot = React.useRef<uPlot | null>(null);
  const theme = useThemeKey();
  const [width, setWidth] = React.useState(0);
  const height = props.height ?? 180;

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
    const axisColor = cssVar('--jp-ui-font-color2');
    const gridColor = cssVar('--jp-border-color2');
    // uPlot needs a pixel font size (it scales it for the device pixel ratio).
    const px = Math.round(parseFloat(getComputedStyle(el).fontSize) * 0.9) || 11;
    const font = `${px}px ${cssVar('--jp-ui-font-family')}`;
    const axis = (): uPlot.Axis => ({
      stroke: axisColor,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1 },
      font
    });
    const opts: uPlot.Options = {
      width,
      height,
      title: undefined,
      scales: { x: { time: props.xAxis === 'time' } },
      axes: [
        { ...axis(), label: props.xAxis === 'step' ? 'step' : undefined, labelFont: font },
        { ...axis(), size: 60, values: (_u, vals) => vals.map(v => formatMetric(v)) }
      ],
      legend: { show: props.series.length > 1, live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: props.xAxis === 'step' ? 'step' : 'time' },
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: cssVar(SERIES_VARS[i % SERIES_VARS.length]),
          width: 1.5,
          spanGaps: true,
          points: { show: s.points.length < 60 },
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : formatMetric(v))
        }))
      ]
    };
    plot.current?.destroy();
    plot.current = new uPlot(opts, alignSeries(props.series, props.xAxis), el);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.series, props.xAxis, width, height, theme]);

  return (
    <figure className="jp-InfinStor-chart" aria-label={props.title}>
      <figcaption className="jp-InfinStor-chartTitle">{props.title}</figcaption>
      <div ref={container} className="jp-InfinStor-chartCanvas" role="img" aria-label={`${props.title} chart`} />
    </figure>
  );
}
