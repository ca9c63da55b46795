import { nullTranslator } from '@jupyterlab/translation';
import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';
import { IExperiment, IRun, ISearchExperimentsQuery, ISearchRunsQuery } from '../../mlflow/types';
import { IJobsClient } from '../client';
import { defaultExperiment, IExperimentSource, notebookExperimentId, VALIDATE_DELAY } from '../dialog/data';
import { JobForm } from '../dialog/JobDialog';
import { IJob, IJobRequest, IJobValidation, IProjectDescription, ITarget } from '../types';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const trans = nullTranslator.load('infinstor_jupyterlab');

const exp = (id: string, name: string, lifecycle_stage = 'active'): IExperiment => ({ experiment_id: id, name, lifecycle_stage });

/** MLflow's experiments and runs, in memory: what the dialog asks the MLflow client. */
class FakeMlflow implements IExperimentSource {
  constructor(
    public experiments: IExperiment[],
    public runs: Array<{ experiment: string; source: string; start: number }> = []
  ) {}
  runSearches: string[][] = [];

  async searchExperiments(query: ISearchExperimentsQuery = {}) {
    let items = this.experiments.filter(e => e.lifecycle_stage === 'active');
    const named = /^name = '(.*)'$/.exec(query.filter ?? '');
    const like = /^name ILIKE '%(.*)%'$/.exec(query.filter ?? '');
    if (named) {
      items = items.filter(e => e.name === named[1]);
    } else if (like) {
      items = items.filter(e => e.name.toLowerCase().includes(like[1].toLowerCase()));
    }
    return { items: items.slice(0, query.maxResults ?? 1000), nextPageToken: null };
  }

  async searchRuns(query: ISearchRunsQuery) {
    this.runSearches.push(query.experimentIds);
    const source = /= '(.*)'$/.exec(query.filter ?? '')![1];
    const found = this.runs
      .filter(r => query.experimentIds.includes(r.experiment) && r.source === source)
      .sort((a, b) => b.start - a.start)
      .slice(0, query.maxResults ?? 100)
      .map(r => ({ info: { run_id: `${r.experiment}-${r.start}`, experiment_id: r.experiment, start_time: r.start } }) as IRun);
    return { items: found, nextPageToken: null };
  }

  async getExperiment(id: string) {
    const found = this.experiments.find(e => e.experiment_id === id);
    if (!found) {
      throw new Error(`No experiment ${id}`);
    }
    return found;
  }
}

describe('the default experiment', () => {
  const experiments = [exp('0', 'Default'), exp('1', 'iris'), exp('2', 'vision'), exp('3', 'gone', 'deleted')];

  it("is the previous job's, else the notebook's, else the sidebar's, else Default", async () => {
    const mlflow = new FakeMlflow(experiments, [
      { experiment: '1', source: 'work/train.ipynb', start: 10 },
      { experiment: '2', source: 'work/train.ipynb', start: 20 },
      { experiment: '2', source: 'other.ipynb', start: 30 }
    ]);
    const pick = async (options: { path: string; preferredId?: string; opened?: IExperiment }) =>
      (await defaultExperiment(mlflow, options))?.name ?? null;
    expect(await pick({ path: 'work/train.ipynb', preferredId: '1' })).toBe('iris');
    expect(await pick({ path: 'work/train.ipynb' })).toBe('vision'); // its newest run's
    expect(await pick({ path: 'new.ipynb', opened: exp('1', 'iris') })).toBe('iris');
    expect(await pick({ path: 'new.ipynb', preferredId: '3', opened: exp('3', 'gone', 'deleted') })).toBe('Default');
    expect(await defaultExperiment(new FakeMlflow([exp('5', 'only')]), { path: 'x.ipynb' })).toBeNull();
  });

  it("finds the notebook's runs across more experiments than one search takes", async () => {
    const many = Array.from({ length: 250 }, (_, i) => exp(String(i), `e${i}`));
    const mlflow = new FakeMlflow(many, [
      { experiment: '7', source: 'a.ipynb', start: 1 },
      { experiment: '240', source: 'a.ipynb', start: 2 }
    ]);
    expect(await notebookExperimentId(mlflow, 'a.ipynb')).toBe('240');
    expect(mlflow.runSearches.map(ids => ids.length)).toEqual([100, 100, 50]);
    expect(await notebookExperimentId(mlflow, 'b.ipynb')).toBeNull();
  });
});

/** The job API in memory; `validate` judges like the server would for these tests. */
class FakeJobs implements Partial<IJobsClient> {
  validations: IJobRequest[] = [];
  submitted: IJobRequest[] = [];
  targets = async (): Promise<ITarget[]> => [
    { name: 'inline', display_name: 'Inline', available: true, reason: null, capabilities: { env_managers: ['local'] } }
  ];
  parameters = async (path: string): Promise<IProjectDescription> => ({
    kind: 'notebook',
    path,
    parameters: [
      { name: 'epochs', type: 'int', default: 3 },
      { name: 'msg', type: 'none', default: null }
    ]
  });
  validate = async (request: IJobRequest): Promise<IJobValidation> => {
    this.validations.push(request);
    const epochs = String(request.parameters?.epochs);
    const errors = /^-?\d+$/.test(epochs)
      ? []
      : [{ field: 'parameters.epochs', message: `parameter 'epochs' must be a int like its default 3; got '${epochs}'` }];
    return { valid: errors.length === 0, errors, parameters: [] };
  };
}

describe('JobForm', () => {
  let mounted: { container: HTMLDivElement; root: Root } | null = null;
  afterEach(() => {
    if (mounted) {
      unmountReactRoot(mounted.container, mounted.root);
      mounted = null;
    }
    jest.useRealTimers();
  });

  async function settle(ms = 0) {
    await act(async () => {
      jest.advanceTimersByTime(ms);
      for (let i = 0; i < 10; i++) {
        await Promise.resolve();
      }
    });
  }

  function type(input: HTMLInputElement, value: string) {
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
    act(() => {
      setter.call(input, value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
  }

  it("shows the server's verdict beside the field, asks once per pause, and runs only what it accepts", async () => {
    jest.useFakeTimers();
    const jobs = new FakeJobs();
    const mlflow = new FakeMlflow([exp('0', 'Default'), exp('4', 'sidebar-exp')]);
    const states: Array<{ ready: boolean }> = [];
    let submit: (() => Promise<IJob | null>) | null = null;
    mounted = mountReactRoot();
    const { container, root } = mounted;
    act(() =>
      root.render(
        <JobForm
          path="nb.ipynb"
          client={jobs as unknown as IJobsClient}
          mlflow={mlflow}
          opened={exp('4', 'sidebar-exp')}
          submit={async request => {
            jobs.submitted.push(request);
            return { id: 'j' } as IJob;
          }}
          trans={trans}
          onStateChange={state => states.push(state)}
          registerSubmit={fn => (submit = fn)}
        />
      )
    );
    await settle();
    await settle(VALIDATE_DELAY);
    const form = container.querySelector('[data-testid="infinstor-job-form"]')!;
    expect(form.getAttribute('data-loaded')).toBe('true');
    // The experiment open in the sidebar (the notebook has no runs yet).
    const select = container.querySelector<HTMLSelectElement>('[data-testid="infinstor-job-experiment"]')!;
    expect(select.value).toBe('4');
    expect(jobs.validations).toHaveLength(1);
    expect(jobs.validations[0]).toMatchObject({ experiment_id: '4', parameters: { epochs: '3', msg: 'None' } });
    expect(form.getAttribute('data-ready')).toBe('true');

    // Quick typing: one check after the pause, and its message beside the field.
    const epochs = container.querySelector<HTMLInputElement>('[data-testid="infinstor-job-param-epochs"]')!;
    type(epochs, '2');
    type(epochs, '2.');
    type(epochs, '2.5');
    expect(form.getAttribute('data-ready')).toBe('false'); // not judged yet
    await settle(VALIDATE_DELAY);
    expect(jobs.validations).toHaveLength(2);
    const error = container.querySelector('[data-testid="infinstor-job-param-error-epochs"]')!;
    expect(error.textContent).toBe("parameter 'epochs' must be a int like its default 3; got '2.5'");
    expect(epochs.getAttribute('aria-invalid')).toBe('true');
    expect(form.getAttribute('data-ready')).toBe('false');
    expect(await submit!()).toBeNull();

    // A None default takes any text; fixed epochs, and Run sends what was judged.
    type(container.querySelector<HTMLInputElement>('[data-testid="infinstor-job-param-msg"]')!, 'Hello');
    type(epochs, '5');
    await settle(VALIDATE_DELAY);
    expect(container.querySelector('[data-testid="infinstor-job-param-error-epochs"]')).toBeNull();
    expect(form.getAttribute('data-ready')).toBe('true');
    expect(states[states.length - 1].ready).toBe(true);
    await act(async () => {
      await submit!();
    });
    expect(jobs.submitted).toEqual([jobs.validations[jobs.validations.length - 1]]);
    expect(jobs.submitted[0].parameters).toEqual({ epochs: '5', msg: 'Hello' });
  });
});
