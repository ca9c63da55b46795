import { LabIcon } from '@jupyterlab/ui-components';

/**
 * InfinStor logo: an infinity loop with a tracked point, drawn in the theme's
 * icon colour (`jp-icon3`) so it follows the light and dark themes.
 */
const infinstorSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none">
    <path class="jp-icon3" stroke="#616161" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"
      d="M12 12c-1.9-2.6-3.6-4.2-5.8-4.2A4.2 4.2 0 0 0 2 12a4.2 4.2 0 0 0 4.2 4.2c2.2 0 3.9-1.6 5.8-4.2zm0 0c1.9 2.6 3.6 4.2 5.8 4.2A4.2 4.2 0 0 0 22 12a4.2 4.2 0 0 0-4.2-4.2c-2.2 0-3.9 1.6-5.8 4.2z"/>
  </g>
  <circle class="jp-icon3" fill="#616161" cx="17.8" cy="7.8" r="2.4"/>
</svg>`;

export const infinstorIcon = new LabIcon({
  name: 'infinstor-jupyterlab:logo',
  svgstr: infinstorSvgstr
});
