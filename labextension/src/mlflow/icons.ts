import { LabIcon } from '@jupyterlab/ui-components';

/**
 * MLflow's own UI in a lab tab: a browser window with a rising chart line, in the theme's icon
 * colour (`jp-icon3`).
 */
const mlflowUiSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="none" stroke="#616161" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
    <rect x="3" y="4" width="18" height="16" rx="2"/>
    <path d="M3 8.5h18"/>
    <path d="M6.5 17l3.5-4 3 2.5 4.5-5"/>
  </g>
</svg>`;

export const mlflowUiIcon = new LabIcon({
  name: 'infinstor-jupyterlab:mlflow-ui',
  svgstr: mlflowUiSvgstr
});
