import { Dialog } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { IJobsClient } from './client';
import {
  IExperiment,
  IJob,
  IJobRequest,
  IParameterSpec,
  IProjectDescription,
  ITarget
} from './types';
import {
  buildJobRequest,
  FieldValue,
  fieldKind,
  gridText,
  IJobForm,
  initialFieldValue,
  isRequired,
  ISweepForm,
  kindLabel,
  MAX_SWEEP_SIZE,
  SweepMode,
  sweepFormFromJob,
  sweepSupport,
  targetOptionsShown,
  basename
} from './validation';

/** Name of the experiment MLflow creates by itself. */
const DEFAULT_EXPERIMENT = 'Default';

/** Debounce of the experiment search, in ms. */
const SEARCH_DELAY = 250;

/**
 * Props of {@link JobForm}.
 */
export interface IJobFormProps {
  path: string;
  client: IJobsClient;
  /** Submit the request; resolves with the job, rejects with the server's error. */
  submit: (request: IJobRequest) => Promise<IJob>;
  /** A previous job whose settings pre-fill the form (re-run). */
  prefill?: IJob | null;
  trans: TranslationBundle;
  /** Called whenever the form can or cannot be submitted. */
  onStateChange?: (state: { ready: boolean; submitting: boolean }) => void;
  /** Receives the function the dialog's Run button calls. */
  registerSubmit?: (submit: () => Promise<IJob | null>) => void;
}

/**
 * The job dialog's body: target, experiment, run name, typed parameters,
 * include-folder and target options.
 */
export function JobForm(props: IJobFormProps): JSX.Element {
  const { path, client, prefill, trans } = props;
  const [targets, setTargets] = React.useState<ITarget[] | null>(null);
  const [project, setProject] = React.useState<IProjectDescription | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const [fields, setFields] = React.useState<Record<string, FieldValue>>({});
  const [form, setForm] = React.useState<IJobForm>(() => ({
    path,
    kind: '',
    target: prefill?.target ?? '',
    experimentMode: 'existing',
    experimentId: prefill?.experiment_id ?? '',
    experimentName: '',
    runName: prefill?.run_name ?? '',
    includeFolder: prefill?.include_folder ?? false,
    envManager: String(prefill?.options?.env_manager ?? ''),
    instanceType: String(prefill?.options?.instance_type ?? ''),
    sweep: sweepFormFromJob(prefill)
  }));
  const [experiments, setExperiments] = React.useState<IExperiment[] | null>(null);
  const [selectedExperiment, setSelectedExperiment] = React.useState<IExperiment | null>(null);
  const [experimentQuery, setExperimentQuery] = React.useState('');
  const [experimentError, setExperimentError] = React.useState<string | null>(null);
  const [experimentReload, setExperimentReload] = React.useState(0);
  const [submitting, setSubmitting] = React.useState(false);
  const [serverError, setServerError] = React.useState<string | null>(null);

  // Targets and parameters.
  React.useEffect(() => {
    let cancelled = false;
    Promise.all([client.targets(), client.parameters(path)])
      .then(([targetList, description]) => {
        if (cancelled) {
          return;
        }
        setTargets(targetList);
        setProject(description);
        const previous = (prefill?.parameters ?? {}) as Record<string, unknown>;
        const initial: Record<string, FieldValue> = {};
        for (const spec of description.parameters) {
          initial[spec.name] = initialFieldValue(spec, previous[spec.name]);
        }
        setFields(initial);
        setForm(f => {
          const known = targetList.find(t => t.name === f.target && t.available);
          const target = known ?? targetList.find(t => t.available) ?? targetList[0];
          const envManagers = target?.capabilities?.env_managers ?? [];
          const instanceTypes = target?.capabilities?.instance_types ?? [];
          return {
            ...f,
            kind: description.kind,
            target: target?.name ?? '',
            envManager: envManagers.includes(f.envManager) ? f.envManager : envManagers[0] ?? '',
            instanceType: instanceTypes.includes(f.instanceType)
              ? f.instanceType
              : instanceTypes[0] ?? ''
          };
        });
      })
      .catch(error => {
        if (!cancelled) {
          setLoadError(error instanceof Error ? error.message : String(error));
        }
      });
    return () => {
      cancelled = true;
    };
  }, [client, path]);

  // Experiments, searched on the server as the user types.
  React.useEffect(() => {
    let cancelled = false;
    const timer = setTimeout(
      () => {
        client
          .searchExperiments(experimentQuery)
          .then(list => {
            if (cancelled) {
              return;
            }
            setExperimentError(null);
            setExperiments(list);
            setSelectedExperiment(current => {
              if (current) {
                return current;
              }
              const wanted = form.experimentId
                ? list.find(e => e.experiment_id === form.experimentId)
                : list.find(e => e.name === DEFAULT_EXPERIMENT) ?? list[0];
              if (wanted) {
                setForm(f => ({ ...f, experimentId: wanted.experiment_id }));
              }
              return wanted ?? null;
            });
          })
          .catch(error => {
            if (!cancelled) {
              setExperimentError(error instanceof Error ? error.message : String(error));
            }
          });
      },
      experiments === null ? 0 : SEARCH_DELAY
    );
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [client, experimentQuery, experimentReload]);

  // Once loaded, move the focus from the form container to its first field.
  const formRef = React.useRef<HTMLDivElement>(null);
  const loaded = targets !== null && project !== null;
  React.useEffect(() => {
    const node = formRef.current;
    if (!loaded || !node) {
      return;
    }
    const active = document.activeElement;
    if (!active || active === document.body || active === node || !node.contains(active)) {
      node.querySelector<HTMLElement>('select, input')?.focus();
    }
  }, [loaded]);

  const specs = project?.parameters ?? [];
  const check = React.useMemo(
    () => buildJobRequest(form, specs, fields, targets ?? []),
    [form, specs, fields, targets]
  );
  const ready = targets !== null && project !== null && check.request !== null;

  React.useLayoutEffect(() => {
    props.onStateChange?.({ ready, submitting });
  }, [ready, submitting]);

  const doSubmit = React.useCallback(async (): Promise<IJob | null> => {
    if (!check.request || submitting) {
      return null;
    }
    setSubmitting(true);
    setServerError(null);
    try {
      return await props.submit(check.request);
    } catch (error) {
      setServerError(error instanceof Error ? error.message : String(error));
      return null;
    } finally {
      setSubmitting(false);
    }
  }, [check, submitting, props.submit]);

  React.useEffect(() => {
    props.registerSubmit?.(doSubmit);
  }, [doSubmit]);

  const update = (patch: Partial<IJobForm>) => {
    setServerError(null);
    setForm(f => ({ ...f, ...patch }));
  };

  const setField = (name: string, value: FieldValue) => {
    setServerError(null);
    setFields(f => ({ ...f, [name]: value }));
  };

  const updateSweep = (patch: Partial<ISweepForm>) => {
    setServerError(null);
    setForm(f => ({ ...f, sweep: { ...(f.sweep as ISweepForm), ...patch } }));
  };

  if (loadError) {
    return (
      <div className="jp-InfinStor-jobForm" data-testid="infinstor-job-form" tabIndex={-1}>
        <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert" data-testid="infinstor-job-load-error">
          {trans.__('Cannot run %1 as a job: %2', path, loadError)}
        </div>
      </div>
    );
  }

  if (targets === null || project === null) {
    return (
      <div className="jp-InfinStor-jobForm" data-testid="infinstor-job-form" tabIndex={-1}>
        <div className="jp-InfinStor-loading" role="status">
          <span className="jp-InfinStor-spinner" aria-hidden="true" />
          {trans.__('Reading the parameters of %1…', basename(path))}
        </div>
      </div>
    );
  }

  const target = targets.find(t => t.name === form.target);
  const shown = targetOptionsShown(target);
  const sweepCaps = sweepSupport(target);
  const sweepForm = form.sweep as ISweepForm;
  const sweepMode: SweepMode = sweepCaps.shown ? sweepForm.mode : 'none';
  const setSweepMode = (mode: SweepMode) => {
    const grid = { ...sweepForm.grid };
    if (mode === 'grid') {
      // Start each parameter's values from its single value.
      for (const spec of specs) {
        if (!(spec.name in grid)) {
          grid[spec.name] = gridText(spec, fields[spec.name] ?? initialFieldValue(spec));
        }
      }
    }
    updateSweep({ mode, grid });
  };
  const experimentOptions = [...(experiments ?? [])];
  if (selectedExperiment && !experimentOptions.some(e => e.experiment_id === selectedExperiment.experiment_id)) {
    experimentOptions.unshift(selectedExperiment);
  }

  return (
    <div
      className="jp-InfinStor-jobForm"
      tabIndex={-1}
      ref={formRef}
      data-testid="infinstor-job-form"
      data-loaded={experiments !== null || experimentError !== null ? 'true' : 'false'}
      data-ready={ready ? 'true' : 'false'}
    >
      <p className="jp-InfinStor-jobForm-source" data-testid="infinstor-job-source">
        {project.kind === 'notebook' ? trans.__('Notebook') : trans.__('MLflow project')}
        {': '}
        <code>{project.path || path}</code>
      </p>

      <div className="jp-InfinStor-formRow">
        <label htmlFor="infinstor-job-target">{trans.__('Target')}</label>
        <select
          id="infinstor-job-target"
          className="jp-mod-styled"
          data-testid="infinstor-job-target"
          value={form.target}
          aria-describedby={check.errors.target ? 'infinstor-job-target-error' : undefined}
          onChange={e => {
            const next = targets.find(t => t.name === e.target.value);
            const env = next?.capabilities?.env_managers ?? [];
            const types = next?.capabilities?.instance_types ?? [];
            update({
              target: e.target.value,
              envManager: env.includes(form.envManager) ? form.envManager : env[0] ?? '',
              instanceType: types.includes(form.instanceType) ? form.instanceType : types[0] ?? ''
            });
          }}
        >
          {targets.map(t => (
            <option key={t.name} value={t.name} disabled={!t.available}>
              {t.available
                ? t.display_name
                : trans.__('%1 (unavailable: %2)', t.display_name, t.reason || trans.__('not configured'))}
            </option>
          ))}
        </select>
        {targets.filter(t => !t.available).map(t => (
          <p key={t.name} className="jp-InfinStor-hint" data-testid={`infinstor-job-target-reason-${t.name}`}>
            {trans.__('%1 is unavailable: %2', t.display_name, t.reason || trans.__('not configured'))}
          </p>
        ))}
        {check.errors.target && (
          <p id="infinstor-job-target-error" className="jp-InfinStor-fieldError" role="alert">
            {check.errors.target}
          </p>
        )}
      </div>

      {shown.envManager && (
        <div className="jp-InfinStor-formRow" data-testid="infinstor-job-env-manager-row">
          <label htmlFor="infinstor-job-env-manager">{trans.__('Environment')}</label>
          <select
            id="infinstor-job-env-manager"
            className="jp-mod-styled"
            data-testid="infinstor-job-env-manager"
            value={form.envManager}
            onChange={e => update({ envManager: e.target.value })}
          >
            {(target?.capabilities.env_managers ?? []).map(name => (
              <option key={name} value={name}>
                {name === 'local' ? trans.__('local (the kernel’s environment)') : name}
              </option>
            ))}
          </select>
        </div>
      )}

      {shown.instanceType && (
        <div className="jp-InfinStor-formRow" data-testid="infinstor-job-instance-type-row">
          <label htmlFor="infinstor-job-instance-type">{trans.__('Instance type')}</label>
          <select
            id="infinstor-job-instance-type"
            className="jp-mod-styled"
            data-testid="infinstor-job-instance-type"
            value={form.instanceType}
            onChange={e => update({ instanceType: e.target.value })}
          >
            {(target?.capabilities.instance_types ?? []).map(name => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </div>
      )}

      {sweepCaps.shown && (
        <fieldset className="jp-InfinStor-formGroup" data-testid="infinstor-job-sweep">
          <legend>{trans.__('Runs')}</legend>
          <div className="jp-InfinStor-radioRow" role="radiogroup" aria-label={trans.__('Single run or parameter sweep')}>
            {(
              [
                ['none', trans.__('Single run')],
                ['grid', trans.__('Sweep: grid')],
                ['list', trans.__('Sweep: list of sets')]
              ] as Array<[SweepMode, string]>
            ).map(([mode, label]) => (
              <label key={mode}>
                <input
                  type="radio"
                  name="infinstor-job-sweep-mode"
                  data-testid={`infinstor-job-sweep-mode-${mode}`}
                  checked={sweepMode === mode}
                  onChange={() => setSweepMode(mode)}
                />
                {label}
              </label>
            ))}
          </div>
          {sweepMode === 'grid' && (
            <p className="jp-InfinStor-hint" data-testid="infinstor-job-sweep-grid-hint">
              {trans.__(
                'Give each parameter one value, or several separated by commas: every combination runs as a child of one parent run. Quote strings that hold commas.'
              )}
            </p>
          )}
          {sweepMode === 'list' && (
            <div className="jp-InfinStor-formRow">
              <label htmlFor="infinstor-job-sweep-list">{trans.__('Parameter sets, one a line')}</label>
              <textarea
                id="infinstor-job-sweep-list"
                className="jp-mod-styled jp-InfinStor-input jp-InfinStor-code jp-InfinStor-sweepList"
                data-testid="infinstor-job-sweep-list"
                rows={4}
                spellCheck={false}
                placeholder={specs.length ? specs.slice(0, 2).map(spec => `${spec.name}=…`).join(', ') : ''}
                aria-invalid={!!check.errors.sweep}
                aria-describedby={check.errors.sweep ? 'infinstor-job-sweep-error' : 'infinstor-job-sweep-list-hint'}
                value={sweepForm.list}
                onChange={e => updateSweep({ list: e.target.value })}
              />
              <p id="infinstor-job-sweep-list-hint" className="jp-InfinStor-hint">
                {trans.__(
                  'e.g. alpha=0.1, l1_ratio=0.5 — parameters a line leaves out take the values below.'
                )}
              </p>
            </div>
          )}
          {sweepMode !== 'none' && (
            <>
              <div className="jp-InfinStor-formRow">
                <label htmlFor="infinstor-job-max-instances">
                  {trans.__('Run on up to this many instances at once (at most %1)', sweepCaps.maxInstances)}
                </label>
                <input
                  id="infinstor-job-max-instances"
                  type="number"
                  min={1}
                  max={sweepCaps.maxInstances}
                  step={1}
                  className={`jp-mod-styled jp-InfinStor-input${check.errors.maxInstances ? ' jp-InfinStor-invalid' : ''}`}
                  data-testid="infinstor-job-max-instances"
                  placeholder={String(Math.min(sweepCaps.maxInstances, check.sweepSize ?? sweepCaps.maxInstances))}
                  aria-invalid={!!check.errors.maxInstances}
                  aria-describedby={check.errors.maxInstances ? 'infinstor-job-max-instances-error' : undefined}
                  value={sweepForm.maxInstances}
                  onChange={e => updateSweep({ maxInstances: e.target.value })}
                />
                {check.errors.maxInstances && (
                  <p id="infinstor-job-max-instances-error" className="jp-InfinStor-fieldError" role="alert" data-testid="infinstor-job-max-instances-error">
                    {check.errors.maxInstances}
                  </p>
                )}
              </div>
              {check.errors.sweep ? (
                <p id="infinstor-job-sweep-error" className="jp-InfinStor-fieldError" role="alert" data-testid="infinstor-job-sweep-error">
                  {check.errors.sweep}
                </p>
              ) : check.sweepSize !== undefined ? (
                <p className="jp-InfinStor-hint" role="status" data-testid="infinstor-job-sweep-size" data-size={check.sweepSize}>
                  {trans.__(
                    '%1 child runs under one parent run (at most %2).',
                    check.sweepSize,
                    MAX_SWEEP_SIZE
                  )}
                </p>
              ) : null}
            </>
          )}
        </fieldset>
      )}

      <fieldset className="jp-InfinStor-formGroup" data-testid="infinstor-job-experiment-group">
        <legend>{trans.__('Experiment')}</legend>
        <div className="jp-InfinStor-radioRow" role="radiogroup" aria-label={trans.__('Experiment choice')}>
          <label>
            <input
              type="radio"
              name="infinstor-job-experiment-mode"
              data-testid="infinstor-job-experiment-existing"
              checked={form.experimentMode === 'existing'}
              onChange={() => update({ experimentMode: 'existing' })}
            />
            {trans.__('Existing')}
          </label>
          <label>
            <input
              type="radio"
              name="infinstor-job-experiment-mode"
              data-testid="infinstor-job-experiment-new"
              checked={form.experimentMode === 'new'}
              onChange={() => update({ experimentMode: 'new' })}
            />
            {trans.__('New')}
          </label>
        </div>
        {form.experimentMode === 'existing' ? (
          <>
            <input
              type="search"
              className="jp-mod-styled jp-InfinStor-input"
              placeholder={trans.__('Search experiments')}
              aria-label={trans.__('Search experiments')}
              data-testid="infinstor-job-experiment-search"
              value={experimentQuery}
              onChange={e => setExperimentQuery(e.target.value)}
            />
            <select
              size={Math.min(5, Math.max(2, experimentOptions.length))}
              className="jp-mod-styled jp-InfinStor-experimentList"
              aria-label={trans.__('Experiment')}
              data-testid="infinstor-job-experiment"
              value={form.experimentId}
              onChange={e => {
                const picked = experimentOptions.find(x => x.experiment_id === e.target.value) ?? null;
                setSelectedExperiment(picked);
                update({ experimentId: e.target.value });
              }}
            >
              {experimentOptions.map(e => (
                <option key={e.experiment_id} value={e.experiment_id}>
                  {e.name}
                </option>
              ))}
            </select>
            {experiments === null && !experimentError && (
              <p className="jp-InfinStor-hint" role="status" data-testid="infinstor-job-experiments-loading">
                {trans.__('Loading experiments…')}
              </p>
            )}
            {experiments !== null && experiments.length === 0 && (
              <p className="jp-InfinStor-hint">
                {experimentQuery
                  ? trans.__('No experiment matches “%1”.', experimentQuery)
                  : trans.__('No experiments yet: create one.')}
              </p>
            )}
            {experimentError && (
              <p className="jp-InfinStor-fieldError" role="alert" data-testid="infinstor-job-experiment-error">
                {trans.__('Could not list experiments: %1', experimentError)}{' '}
                <button
                  type="button"
                  className="jp-InfinStor-linkButton"
                  onClick={() => setExperimentReload(n => n + 1)}
                >
                  {trans.__('Retry')}
                </button>
              </p>
            )}
          </>
        ) : (
          <input
            type="text"
            className="jp-mod-styled jp-InfinStor-input"
            placeholder={trans.__('Name of the new experiment')}
            aria-label={trans.__('New experiment name')}
            data-testid="infinstor-job-experiment-name"
            value={form.experimentName}
            onChange={e => update({ experimentName: e.target.value })}
          />
        )}
        {check.errors.experiment && (experiments !== null || form.experimentMode === 'new') && (
          <p className="jp-InfinStor-fieldError" role="alert" data-testid="infinstor-job-experiment-problem">
            {check.errors.experiment}
          </p>
        )}
      </fieldset>

      <div className="jp-InfinStor-formRow">
        <label htmlFor="infinstor-job-run-name">{trans.__('Run name')}</label>
        <input
          id="infinstor-job-run-name"
          type="text"
          className="jp-mod-styled jp-InfinStor-input"
          placeholder={trans.__('optional; MLflow picks one')}
          data-testid="infinstor-job-run-name"
          value={form.runName}
          onChange={e => update({ runName: e.target.value })}
        />
        {check.errors.runName && (
          <p className="jp-InfinStor-fieldError" role="alert">
            {check.errors.runName}
          </p>
        )}
      </div>

      <fieldset className="jp-InfinStor-formGroup" data-testid="infinstor-job-parameters">
        <legend>{trans.__('Parameters')}</legend>
        {specs.length === 0 && (
          <p className="jp-InfinStor-hint" data-testid="infinstor-job-no-parameters">
            {project.kind === 'notebook'
              ? trans.__('No cell tagged “parameters” in this notebook.')
              : trans.__('The main entry point takes no parameters.')}
          </p>
        )}
        {specs.map(spec =>
          sweepMode === 'grid' ? (
            <GridField
              key={spec.name}
              spec={spec}
              value={sweepForm.grid[spec.name] ?? gridText(spec, fields[spec.name] ?? initialFieldValue(spec))}
              error={check.parameterErrors[spec.name] ?? null}
              onChange={value => updateSweep({ grid: { ...sweepForm.grid, [spec.name]: value } })}
              trans={trans}
            />
          ) : (
            <ParameterField
              key={spec.name}
              spec={spec}
              value={fields[spec.name] ?? initialFieldValue(spec)}
              error={check.parameterErrors[spec.name] ?? null}
              onChange={value => setField(spec.name, value)}
              trans={trans}
            />
          )
        )}
      </fieldset>

      {project.kind === 'notebook' && (
        <div className="jp-InfinStor-formRow jp-InfinStor-checkRow">
          <label>
            <input
              type="checkbox"
              data-testid="infinstor-job-include-folder"
              checked={form.includeFolder}
              onChange={e => update({ includeFolder: e.target.checked })}
            />
            {trans.__('Include the files beside the notebook')}
          </label>
        </div>
      )}

      {serverError && (
        <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert" data-testid="infinstor-job-server-error">
          {serverError}
        </div>
      )}
      {submitting && (
        <div className="jp-InfinStor-loading" role="status">
          <span className="jp-InfinStor-spinner" aria-hidden="true" />
          {trans.__('Submitting…')}
        </div>
      )}
    </div>
  );
}

function ParameterField(props: {
  spec: IParameterSpec;
  value: FieldValue;
  error: string | null;
  onChange: (value: FieldValue) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { spec, value, error, onChange, trans } = props;
  const kind = fieldKind(spec);
  const id = `infinstor-job-param-${spec.name}`;
  const errorId = `${id}-error`;
  const invalid = error !== null;
  const common = {
    id,
    'data-testid': `infinstor-job-param-${spec.name}`,
    'data-param-type': String(spec.type),
    'aria-invalid': invalid,
    'aria-describedby': invalid ? errorId : undefined,
    className: `jp-mod-styled jp-InfinStor-input${invalid ? ' jp-InfinStor-invalid' : ''}`
  };
  let input: JSX.Element;
  if (kind === 'bool') {
    input = (
      <input
        {...common}
        className=""
        type="checkbox"
        checked={value === true}
        onChange={e => onChange(e.target.checked)}
      />
    );
  } else if (kind === 'int' || kind === 'float') {
    input = (
      <input
        {...common}
        type="number"
        // "any": the dialog checks integers itself and says so by name.
        step="any"
        inputMode={kind === 'int' ? 'numeric' : 'decimal'}
        value={String(value)}
        onChange={e => onChange(e.target.value)}
      />
    );
  } else {
    input = (
      <input
        {...common}
        type="text"
        spellCheck={false}
        className={`${common.className}${kind === 'literal' ? ' jp-InfinStor-code' : ''}`}
        placeholder={kind === 'literal' ? trans.__('Python literal, e.g. %1', spec.type === 'dict' ? "{'a': 1}" : '[1, 2]') : undefined}
        value={String(value)}
        onChange={e => onChange(e.target.value)}
      />
    );
  }
  return (
    <div className="jp-InfinStor-paramRow" data-testid={`infinstor-job-param-row-${spec.name}`}>
      <label htmlFor={id} className="jp-InfinStor-paramName">
        {spec.name}
        <span className="jp-InfinStor-paramType">
          {' '}
          {kindLabel(spec)}
          {isRequired(spec) ? trans.__(', required') : ''}
        </span>
      </label>
      {input}
      {invalid && (
        <p id={errorId} className="jp-InfinStor-fieldError" role="alert" data-testid={`infinstor-job-param-error-${spec.name}`}>
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * A parameter's field in grid mode: one value, or several separated by commas.
 */
function GridField(props: {
  spec: IParameterSpec;
  value: string;
  error: string | null;
  onChange: (value: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { spec, value, error, onChange, trans } = props;
  const id = `infinstor-job-sweep-values-${spec.name}`;
  const errorId = `${id}-error`;
  const invalid = error !== null;
  const example: Record<string, string> = {
    int: '1, 2, 4',
    float: '0.01, 0.1',
    bool: 'true, false',
    str: 'a, b',
    list: '[16, 8], [32, 16]',
    dict: "{'a': 1}, {'a': 2}"
  };
  return (
    <div className="jp-InfinStor-paramRow" data-testid={`infinstor-job-param-row-${spec.name}`}>
      <label htmlFor={id} className="jp-InfinStor-paramName">
        {spec.name}
        <span className="jp-InfinStor-paramType">
          {' '}
          {trans.__('%1 values, comma-separated', kindLabel(spec))}
          {isRequired(spec) ? trans.__(', required') : ''}
        </span>
      </label>
      <input
        id={id}
        type="text"
        spellCheck={false}
        className={`jp-mod-styled jp-InfinStor-input jp-InfinStor-code${invalid ? ' jp-InfinStor-invalid' : ''}`}
        data-testid={id}
        data-param-type={String(spec.type)}
        aria-invalid={invalid}
        aria-describedby={invalid ? errorId : undefined}
        placeholder={trans.__('e.g. %1', example[String(spec.type)] ?? '1, 2')}
        value={value}
        onChange={e => onChange(e.target.value)}
      />
      {invalid && (
        <p id={errorId} className="jp-InfinStor-fieldError" role="alert" data-testid={`infinstor-job-param-error-${spec.name}`}>
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * The dialog body widget: renders {@link JobForm}, hands the job to the dialog.
 */
export class JobFormWidget extends ReactWidget {
  constructor(private options: Omit<IJobFormProps, 'onStateChange' | 'registerSubmit'>) {
    super();
    this.addClass('jp-InfinStor-jobDialogBody');
  }

  /** Called when the form becomes (un)submittable. */
  onStateChange: ((state: { ready: boolean; submitting: boolean }) => void) | null = null;

  /** Submit the form; the job, or null when invalid or refused (the form says why). */
  submit(): Promise<IJob | null> {
    return this._submit ? this._submit() : Promise.resolve(null);
  }

  /** The submitted job (the dialog's value). */
  getValue(): IJob | null {
    return this.job;
  }

  job: IJob | null = null;

  protected render(): JSX.Element {
    return (
      <JobForm
        {...this.options}
        onStateChange={state => this.onStateChange?.(state)}
        registerSubmit={submit => {
          this._submit = submit;
        }}
      />
    );
  }

  private _submit: (() => Promise<IJob | null>) | null = null;
}

/**
 * A dialog that stays open while its Run button submits the job, and when the
 * server refuses it (the form shows the server's message).
 */
export class JobDialog extends Dialog<IJob | null> {
  constructor(options: JobDialog.IOptions) {
    const trans = options.trans ?? nullTranslator.load('infinstor_jupyterlab');
    const body = new JobFormWidget({
      path: options.path,
      client: options.client,
      submit: options.submit,
      prefill: options.prefill,
      trans
    });
    super({
      title: options.prefill
        ? trans.__('Re-run as MLflow job')
        : trans.__('Run as MLflow job'),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Run job'), ariaLabel: trans.__('Run job') })
      ],
      // Exists from the first render (the fields come after loading).
      focusNodeSelector: '.jp-InfinStor-jobForm',
      hasClose: true
    });
    this.addClass('jp-InfinStor-jobDialog');
    this._form = body;
    body.onStateChange = state => {
      this._formReady = state.ready;
      this._submitting = state.submitting;
      this._updateAccept();
    };
    this._updateAccept();
  }

  resolve(index?: number): void {
    const accept = index === undefined || index === 1;
    if (!accept) {
      super.resolve(index);
      return;
    }
    if (this._submitting || this._pending) {
      return;
    }
    this._pending = true;
    this._updateAccept();
    void this._form
      .submit()
      .then(job => {
        this._pending = false;
        if (job && !this.isDisposed) {
          this._form.job = job;
          super.resolve(1);
        } else {
          this._updateAccept();
        }
      })
      .catch(() => {
        this._pending = false;
        this._updateAccept();
      });
  }

  /**
   * Dialog re-enables its accept button on every `input` event from HTML
   * validity alone (after the form may have disabled it): the form decides.
   */
  handleEvent(event: Event): void {
    super.handleEvent(event);
    if (event.type === 'input') {
      this._updateAccept();
    }
  }

  private _updateAccept(): void {
    const button = this.node.querySelector<HTMLButtonElement>('.jp-Dialog-button.jp-mod-accept');
    if (button) {
      const busy = this._submitting || this._pending;
      button.disabled = !this._formReady || busy;
      button.setAttribute('data-testid', 'infinstor-job-submit');
    }
  }

  private _form: JobFormWidget;
  private _formReady = false;
  private _submitting = false;
  private _pending = false;
}

export namespace JobDialog {
  export interface IOptions {
    path: string;
    client: IJobsClient;
    submit: (request: IJobRequest) => Promise<IJob>;
    prefill?: IJob | null;
    trans?: TranslationBundle;
  }
}
