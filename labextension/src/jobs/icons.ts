import { LabIcon } from '@jupyterlab/ui-components';

/**
 * The InfinStor loop over a play triangle: the Jobs view's icon, drawn in the
 * theme's icon colour (`jp-icon3`).
 */
const jobsSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none">
    <path class="jp-icon3" stroke="#616161" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"
      d="M12 8c-1.4-1.9-2.7-3.1-4.3-3.1A3.1 3.1 0 0 0 4.6 8a3.1 3.1 0 0 0 3.1 3.1c1.6 0 2.9-1.2 4.3-3.1zm0 0c1.4 1.9 2.7 3.1 4.3 3.1A3.1 3.1 0 0 0 19.4 8a3.1 3.1 0 0 0-3.1-3.1c-1.6 0-2.9 1.2-4.3 3.1z"/>
  </g>
  <path class="jp-icon3" fill="#616161" d="M9.5 13.5v7.5l6.5-3.75z"/>
</svg>`;

export const jobsIcon = new LabIcon({
  name: 'infinstor-jupyterlab:jobs',
  svgstr: jobsSvgstr
});
