import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A server rack with a power light: the Compute view's icon, drawn in the
 * theme's icon colour (`jp-icon3`; on outlined shapes only: JupyterLab recolours
 * the `fill` of a `jp-icon3` element that has one, `none` included).
 */
const computeSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none" stroke-width="2" stroke-linejoin="round">
    <rect class="jp-icon3" stroke="#616161" x="4" y="4" width="16" height="7" rx="1.5"/>
    <rect class="jp-icon3" stroke="#616161" x="4" y="13" width="16" height="7" rx="1.5"/>
  </g>
  <g class="jp-icon3" fill="#616161">
    <circle cx="8" cy="7.5" r="1.2"/>
    <circle cx="8" cy="16.5" r="1.2"/>
    <rect x="12" y="6.7" width="5" height="1.6" rx="0.8"/>
    <rect x="12" y="15.7" width="5" height="1.6" rx="0.8"/>
  </g>
</svg>`;

export const computeIcon = new LabIcon({
  name: 'infinstor-jupyterlab:compute',
  svgstr: computeSvgstr
});
