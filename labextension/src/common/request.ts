import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * Error raised by {@link requestAPI}.
 *
 * `status` is the HTTP status code of the response, or `0` when the server
 * could not be reached at all (see {@link InfinStorRequestError.isNetworkError}).
 * `message` is the server's human readable `message` when it sent one.
 */
export class InfinStorRequestError extends Error {
  constructor(
    message: string,
    options: {
      status: number;
      reason?: string;
      url?: string;
      cause?: unknown;
    }
  ) {
    super(message);
    this.name = 'InfinStorRequestError';
    this.status = options.status;
    this.reason = options.reason ?? '';
    this.url = options.url ?? '';
    this.cause = options.cause;
    // Keep `instanceof` working when compiled to older targets.
    Object.setPrototypeOf(this, new.target.prototype);
  }

  /**
   * HTTP status code, or 0 for a network error.
   */
  readonly status: number;

  /**
   * The server's machine readable `reason`, or an empty string.
   */
  readonly reason: string;

  /**
   * The URL that was requested.
   */
  readonly url: string;

  /**
   * The underlying error, if any.
   */
  readonly cause: unknown;

  /**
   * Whether the request never got an HTTP response.
   */
  get isNetworkError(): boolean {
    return this.status === 0;
  }
}

/**
 * The URL of an InfinStor API endpoint.
 */
export function apiUrl(
  endpoint: string,
  settings: ServerConnection.ISettings
): string {
  return URLExt.join(settings.baseUrl, 'infinstor', 'api', endpoint);
}

/**
 * Call the InfinStor server extension's REST API.
 *
 * @param endpoint API path below `infinstor/api/`, e.g. `status`.
 * @param init Initial values for the request.
 * @param settings Server connection settings; made from the page config when omitted.
 * @returns The decoded JSON body (or `undefined` for an empty body).
 * @throws {InfinStorRequestError} on a network error, a non-2xx status or a
 *   2xx response whose body is not JSON.
 */
export async function requestAPI<T>(
  endpoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = apiUrl(endpoint, settings);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new InfinStorRequestError(
      `Could not reach the Jupyter server at ${settings.baseUrl} (${detail}). ` +
        'Check that the server is still running and that you are online.',
      { status: 0, url, cause: error }
    );
  }

  let text = '';
  try {
    text = await response.text();
  } catch (error) {
    // Treat a body that cannot be read as empty; the status still tells what happened.
  }

  let data: any = undefined;
  let parseError: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch (error) {
      parseError = error;
    }
  }

  if (!response.ok) {
    const body = data && typeof data === 'object' ? data : {};
    const message =
      typeof body.message === 'string' && body.message
        ? body.message
        : `Request to ${url} failed with HTTP ${response.status}` +
          (response.statusText ? ` ${response.statusText}` : '');
    throw new InfinStorRequestError(message, {
      status: response.status,
      reason: typeof body.reason === 'string' ? body.reason : '',
      url
    });
  }

  if (parseError) {
    throw new InfinStorRequestError(
      `The server answered ${url} with a body that is not JSON.`,
      { status: response.status, reason: 'invalid-json', url, cause: parseError }
    );
  }

  return data as T;
}
