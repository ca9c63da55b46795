/**
 * The InfinStor JupyterLab extension: its plugins, and what other extensions may import.
 */
import { computePlugin } from './compute/plugin';
import { jobsPlugin } from './jobs/plugin';
import { mlflowClientPlugin, mlflowPlugin } from './mlflow/plugin';
import { sidebarPlugin } from './sidebar/plugin';

export { InfinStorRequestError, requestAPI } from './common/request';
export { StatusModel } from './status/model';
export * from './status/status';
export { infinstorIcon } from './common/icons';
export { InfinStorSidebar, SIDEBAR_ID } from './sidebar/sidebar';
export { CommandIDs, PLUGIN_ID, sidebarPlugin } from './sidebar/plugin';
export { FRONTEND_VERSION } from './common/version';
export * from './signin/controller';
export { SignInConfigSync, signInConfigUpdate } from './signin/config';
export { JobCommandIDs, jobsPlugin, JOBS_PLUGIN_ID } from './jobs/plugin';
export { MlflowCommandIDs, mlflowClientPlugin, mlflowPlugin, MLFLOW_CLIENT_PLUGIN_ID, MLFLOW_PLUGIN_ID } from './mlflow/plugin';
export { MlflowClient } from './mlflow/client';
export { ComputeCommandIDs, computePlugin, COMPUTE_PLUGIN_ID } from './compute/plugin';
export * from './tokens';

export default [sidebarPlugin, mlflowClientPlugin, jobsPlugin, mlflowPlugin, computePlugin];
