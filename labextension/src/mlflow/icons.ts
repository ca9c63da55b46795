import { LabIcon } from '@jupyterlab/ui-components';

/**
 * MLflow's own UI in a lab tab: a browser window with a rising chart line, in the theme's icon
 * colour (`jp-icon3`, on the outlined shapes only: JupyterLab recolours the `fill` of a
 * `jp-icon3` element that has one, `none` included).
 */
const mlflowUiSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
    <rect class="jp-icon3" stroke="#616161" x="3" y="4" width="18" height="16" rx="2"/>
    <path class="jp-icon3" stroke="#616161" d="M3 8.5h18"/>
    <path class="jp-icon3" stroke="#616161" d="M6.5 17l3.5-4 3 2.5 4.5-5"/>
  </g>
</svg>`;

export const mlflowUiIcon = new LabIcon({
  name: 'infinstor-jupyterlab:mlflow-ui',
  svgstr: mlflowUiSvgstr
});
