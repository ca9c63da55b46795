import { requestAPI } from '../common/request';
import {
  IComputeConfig,
  IInstanceActionAnswer,
  IInstancesAnswer,
  InstanceAction
} from './types';

/**
 * What the compute model needs from the server; {@link ComputeClient}
 * implements it over REST, tests implement it in memory.
 */
export interface IComputeClient {
  instances(): Promise<IInstancesAnswer>;
  config(): Promise<IComputeConfig>;
  act(id: string, action: InstanceAction): Promise<IInstanceActionAnswer>;
}

/**
 * Typed client of the InfinStor compute REST API (`<baseUrl>infinstor/api/compute/`).
 */
export class ComputeClient implements IComputeClient {
  async instances(): Promise<IInstancesAnswer> {
    const data = await requestAPI<Partial<IInstancesAnswer>>('compute/instances');
    return {
      available: data?.available === true,
      reason: typeof data?.reason === 'string' ? data.reason : null,
      instances: Array.isArray(data?.instances) ? data!.instances! : []
    };
  }

  config(): Promise<IComputeConfig> {
    return requestAPI<IComputeConfig>('compute/config');
  }

  act(id: string, action: InstanceAction): Promise<IInstanceActionAnswer> {
    return requestAPI<IInstanceActionAnswer>(
      `compute/instances/${encodeURIComponent(id)}/${action}`,
      { method: 'POST' }
    );
  }
}
