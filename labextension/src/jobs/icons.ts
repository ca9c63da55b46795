import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A play button in a circle: the Jobs view's icon (runs started as jobs), drawn in the theme's
 * icon colour (`jp-icon3`); unlike the InfinStor loop of the MLflow sidebar and the rack of the
 * Compute view.
 */
const jobsSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none">
    <circle class="jp-icon3" stroke="#616161" stroke-width="2" cx="12" cy="12" r="9"/>
  </g>
  <path class="jp-icon3" fill="#616161" d="M10 7.9v8.2l6.4-4.1z"/>
</svg>`;

export const jobsIcon = new LabIcon({
  name: 'infinstor-jupyterlab:jobs',
  svgstr: jobsSvgstr
});
