/**
 * The job dialog's data: what it loads (targets, the project's parameters), the experiments it
 * offers (searched through the MLflow client, with a sensible default) and the server's verdict
 * on the request as the user types (`POST jobs/validate`, debounced).
 */
import React from 'react';

import { asError } from '../../common/pollingModel';
import { experimentFilter, quoteKey, quoteString, SOURCE_NAME_TAG } from '../../mlflow/format';
import { IExperiment } from '../../mlflow/types';
import { IMlflowClient } from '../../tokens';
import { IJobsClient } from '../client';
import { IJobRequest, IJobValidation, IProjectDescription, ITarget } from '../types';

/** What the dialog asks of the MLflow client (the lab's client; a small fake in unit tests). */
export type IExperimentSource = Pick<IMlflowClient, 'searchExperiments' | 'searchRuns' | 'getExperiment'>;

/** Name of the experiment MLflow creates by itself. */
export const DEFAULT_EXPERIMENT = 'Default';

/** Debounce of the experiment search, in ms. */
export const SEARCH_DELAY = 250;

/** Debounce of the server's check of the request, in ms. */
export const VALIDATE_DELAY = 300;

/** Experiments the dialog lists at most (newest first; the search box finds the others). */
export const EXPERIMENT_PAGE = 200;

/**
 * The experiment the notebook's newest run went to (runs are tagged with the notebook's lab path
 * as `mlflow.source.name`, whether a kernel or a job made them), or null when it has none.
 */
export async function notebookExperimentId(mlflow: IExperimentSource, path: string): Promise<string | null> {
  const experiments = await mlflow.searchExperiments({ maxResults: 1000, orderBy: ['last_update_time DESC'] });
  const ids = experiments.items.map(e => e.experiment_id);
  let newest: { id: string; start: number } | null = null;
  // MLflow takes at most 100 experiment ids per search.
  for (let i = 0; i < ids.length; i += 100) {
    const page = await mlflow.searchRuns({
      experimentIds: ids.slice(i, i + 100),
      filter: `tags.${quoteKey(SOURCE_NAME_TAG)} = ${quoteString(path)}`,
      orderBy: ['attributes.start_time DESC'],
      maxResults: 1
    });
    const run = page.items[0];
    if (run && (!newest || (run.info.start_time ?? 0) > newest.start)) {
      newest = { id: run.info.experiment_id, start: run.info.start_time ?? 0 };
    }
  }
  return newest?.id ?? null;
}

/**
 * The experiment the dialog starts with: the previous job's (re-run), else the notebook's (where
 * its runs go), else the one open in the sidebar, else `Default`; null when none exists (the
 * dialog then takes the first listed).
 */
export async function defaultExperiment(
  mlflow: IExperimentSource,
  options: { path: string; preferredId?: string | null; opened?: IExperiment | null }
): Promise<IExperiment | null> {
  const active = async (id: string | null | undefined): Promise<IExperiment | null> => {
    if (!id) {
      return null;
    }
    try {
      const experiment = await mlflow.getExperiment(id);
      return !experiment.lifecycle_stage || experiment.lifecycle_stage === 'active' ? experiment : null;
    } catch {
      return null; // deleted, or not readable by this user
    }
  };
  const found =
    (await active(options.preferredId)) ??
    (await active(await notebookExperimentId(mlflow, options.path).catch(() => null))) ??
    (options.opened ? await active(options.opened.experiment_id) : null);
  if (found) {
    return found;
  }
  const named = await mlflow.searchExperiments({ filter: `name = ${quoteString(DEFAULT_EXPERIMENT)}`, maxResults: 1 });
  return named.items[0] ?? null;
}

/** The targets and the project's parameters, loaded once per path. */
export interface IJobSetup {
  targets: ITarget[] | null;
  project: IProjectDescription | null;
  error: string | null;
}

export function useJobSetup(client: IJobsClient, path: string): IJobSetup {
  const [setup, setSetup] = React.useState<IJobSetup>({ targets: null, project: null, error: null });
  React.useEffect(() => {
    let cancelled = false;
    Promise.all([client.targets(), client.parameters(path)])
      .then(([targets, project]) => !cancelled && setSetup({ targets, project, error: null }))
      .catch(error => !cancelled && setSetup({ targets: null, project: null, error: asError(error).message }));
    return () => {
      cancelled = true;
    };
  }, [client, path]);
  return setup;
}

/** The experiment choice: the search, its results, the chosen experiment. */
export interface IExperimentChoice {
  query: string;
  setQuery(query: string): void;
  /** The search's results (null until the first answer). */
  experiments: IExperiment[] | null;
  /** The chosen experiment (listed first even when the search does not find it). */
  selected: IExperiment | null;
  select(experiment: IExperiment | null): void;
  error: string | null;
  retry(): void;
  /** Whether the list and the default choice are known. */
  ready: boolean;
}

/**
 * The dialog's experiments, searched through the MLflow client as the user types. The one place
 * the dialog uses that client.
 */
export function useExperiments(
  mlflow: IExperimentSource,
  options: { path: string; preferredId?: string | null; opened?: IExperiment | null }
): IExperimentChoice {
  const [query, setQuery] = React.useState('');
  const [experiments, setExperiments] = React.useState<IExperiment[] | null>(null);
  const [selected, setSelected] = React.useState<IExperiment | null>(null);
  const [picked, setPicked] = React.useState(false);
  const [defaultKnown, setDefaultKnown] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [reload, setReload] = React.useState(0);

  // The default, once: unless the user picked one meanwhile.
  React.useEffect(() => {
    let cancelled = false;
    defaultExperiment(mlflow, { path: options.path, preferredId: options.preferredId, opened: options.opened })
      .catch(() => null)
      .then(found => {
        if (cancelled) {
          return;
        }
        setDefaultKnown(true);
        if (found) {
          setSelected(current => current ?? found);
        }
      });
    return () => {
      cancelled = true;
    };
  }, [mlflow, options.path, options.preferredId]);

  // The search, debounced while the user types.
  React.useEffect(() => {
    let cancelled = false;
    const timer = setTimeout(
      () => {
        mlflow
          .searchExperiments({
            filter: experimentFilter(query) || undefined,
            orderBy: ['last_update_time DESC'],
            maxResults: EXPERIMENT_PAGE
          })
          .then(page => {
            if (!cancelled) {
              setError(null);
              setExperiments(page.items);
            }
          })
          .catch(reason => !cancelled && setError(asError(reason).message));
      },
      experiments === null ? 0 : SEARCH_DELAY
    );
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [mlflow, query, reload]);

  // No default experiment at all (no `Default` either): the first listed.
  React.useEffect(() => {
    if (defaultKnown && !selected && !picked && experiments && experiments.length > 0) {
      setSelected(experiments[0]);
    }
  }, [defaultKnown, selected, picked, experiments]);

  return {
    query,
    setQuery,
    experiments,
    selected,
    select: experiment => {
      setPicked(true);
      setSelected(experiment);
    },
    error,
    retry: () => setReload(n => n + 1),
    ready: defaultKnown && (experiments !== null || error !== null)
  };
}

/** The server's verdict on the request shown: for this very request, or an earlier one. */
export interface IServerCheck {
  validation: IJobValidation | null;
  /** Whether `validation` answers the current request (else it is an earlier one's, or none). */
  current: boolean;
  /** The check itself failed (the server is unreachable): Run stays possible, `POST jobs` judges. */
  error: Error | null;
}

/** Ask the server to judge `request` (a dry run), debounced; answers to earlier requests are kept until then. */
export function useServerCheck(client: IJobsClient, request: IJobRequest | null, delay = VALIDATE_DELAY): IServerCheck {
  const key = request ? JSON.stringify(request) : '';
  const [state, setState] = React.useState<{ key: string; validation: IJobValidation | null; error: Error | null }>({
    key: '',
    validation: null,
    error: null
  });
  React.useEffect(() => {
    if (!request) {
      return;
    }
    let cancelled = false;
    const timer = setTimeout(() => {
      client
        .validate(request)
        .then(validation => !cancelled && setState({ key, validation, error: null }))
        .catch(reason => !cancelled && setState(s => ({ key, validation: s.validation, error: asError(reason) })));
    }, delay);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [client, key, delay]);
  const current = !!request && state.key === key;
  return { validation: state.validation, current, error: current ? state.error : null };
}
