/**
 * The job dialog's sections: target and its options, sweep, experiment, run name, parameters,
 * include-folder. Each renders what it is given and reports edits; the form (JobDialog.tsx)
 * holds the state.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IExperiment } from '../../mlflow/types';
import { IParameterSpec, ITarget } from '../types';
import { IExperimentChoice } from './data';
import {
  FieldValue,
  fieldKind,
  gridText,
  IJobForm,
  initialFieldValue,
  isRequired,
  ISweepForm,
  kindLabel,
  SweepMode,
  sweepSupport,
  targetOptionsShown
} from './request';

/** A field's message, tied to it for assistive technology. */
function FieldError(props: { id?: string; testId?: string; message?: string | null }): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <p id={props.id} className="jp-InfinStor-fieldError" role="alert" data-testid={props.testId}>
      {props.message}
    </p>
  );
}

export function TargetSection(props: {
  targets: ITarget[];
  form: IJobForm;
  update: (patch: Partial<IJobForm>) => void;
  errors: Record<string, string>;
  trans: TranslationBundle;
}): JSX.Element {
  const { targets, form, update, errors, trans } = props;
  const target = targets.find(t => t.name === form.target);
  const shown = targetOptionsShown(target);
  return (
    <>
      <div className="jp-InfinStor-formRow">
        <label htmlFor="infinstor-job-target">{trans.__('Target')}</label>
        <select
          id="infinstor-job-target"
          className="jp-mod-styled"
          data-testid="infinstor-job-target"
          value={form.target}
          aria-describedby={errors.target ? 'infinstor-job-target-error' : undefined}
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
        {targets
          .filter(t => !t.available)
          .map(t => (
            <p key={t.name} className="jp-InfinStor-hint" data-testid={`infinstor-job-target-reason-${t.name}`}>
              {trans.__('%1 is unavailable: %2', t.display_name, t.reason || trans.__('not configured'))}
            </p>
          ))}
        <FieldError id="infinstor-job-target-error" testId="infinstor-job-target-error" message={errors.target} />
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
      <FieldError testId="infinstor-job-options-error" message={errors.options} />
    </>
  );
}

export function SweepSection(props: {
  target: ITarget | undefined;
  specs: IParameterSpec[];
  sweep: ISweepForm;
  mode: SweepMode;
  setMode: (mode: SweepMode) => void;
  updateSweep: (patch: Partial<ISweepForm>) => void;
  sweepSize?: number;
  errors: Record<string, string>;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { specs, sweep, mode, updateSweep, errors, trans } = props;
  const caps = sweepSupport(props.target);
  if (!caps.shown) {
    return null;
  }
  return (
    <fieldset className="jp-InfinStor-formGroup" data-testid="infinstor-job-sweep">
      <legend>{trans.__('Runs')}</legend>
      <div className="jp-InfinStor-radioRow" role="radiogroup" aria-label={trans.__('Single run or parameter sweep')}>
        {(
          [
            ['none', trans.__('Single run')],
            ['grid', trans.__('Sweep: grid')],
            ['list', trans.__('Sweep: list of sets')]
          ] as Array<[SweepMode, string]>
        ).map(([value, label]) => (
          <label key={value}>
            <input
              type="radio"
              name="infinstor-job-sweep-mode"
              data-testid={`infinstor-job-sweep-mode-${value}`}
              checked={mode === value}
              onChange={() => props.setMode(value)}
            />
            {label}
          </label>
        ))}
      </div>
      {mode === 'grid' && (
        <p className="jp-InfinStor-hint" data-testid="infinstor-job-sweep-grid-hint">
          {trans.__(
            'Give each parameter one value, or several separated by commas: every combination runs as a child of one parent run. Quote strings that hold commas.'
          )}
        </p>
      )}
      {mode === 'list' && (
        <div className="jp-InfinStor-formRow">
          <label htmlFor="infinstor-job-sweep-list">{trans.__('Parameter sets, one a line')}</label>
          <textarea
            id="infinstor-job-sweep-list"
            className="jp-mod-styled jp-InfinStor-input jp-InfinStor-code jp-InfinStor-sweepList"
            data-testid="infinstor-job-sweep-list"
            rows={4}
            spellCheck={false}
            placeholder={specs.length ? specs.slice(0, 2).map(spec => `${spec.name}=…`).join(', ') : ''}
            aria-invalid={!!errors.sweep}
            aria-describedby={errors.sweep ? 'infinstor-job-sweep-error' : 'infinstor-job-sweep-list-hint'}
            value={sweep.list}
            onChange={e => updateSweep({ list: e.target.value })}
          />
          <p id="infinstor-job-sweep-list-hint" className="jp-InfinStor-hint">
            {trans.__('e.g. alpha=0.1, l1_ratio=0.5 — parameters a line leaves out take the values below.')}
          </p>
        </div>
      )}
      {mode !== 'none' && (
        <>
          <div className="jp-InfinStor-formRow">
            <label htmlFor="infinstor-job-max-instances">
              {trans.__('Run on up to this many instances at once (at most %1)', caps.maxInstances)}
            </label>
            <input
              id="infinstor-job-max-instances"
              type="number"
              min={1}
              max={caps.maxInstances}
              step={1}
              className={`jp-mod-styled jp-InfinStor-input${errors.maxInstances ? ' jp-InfinStor-invalid' : ''}`}
              data-testid="infinstor-job-max-instances"
              placeholder={String(Math.min(caps.maxInstances, props.sweepSize ?? caps.maxInstances))}
              aria-invalid={!!errors.maxInstances}
              aria-describedby={errors.maxInstances ? 'infinstor-job-max-instances-error' : undefined}
              value={sweep.maxInstances}
              onChange={e => updateSweep({ maxInstances: e.target.value })}
            />
            <FieldError
              id="infinstor-job-max-instances-error"
              testId="infinstor-job-max-instances-error"
              message={errors.maxInstances}
            />
          </div>
          {errors.sweep ? (
            <FieldError id="infinstor-job-sweep-error" testId="infinstor-job-sweep-error" message={errors.sweep} />
          ) : props.sweepSize !== undefined ? (
            <p className="jp-InfinStor-hint" role="status" data-testid="infinstor-job-sweep-size" data-size={props.sweepSize}>
              {trans._n('%1 child run under one parent run.', '%1 child runs under one parent run.', props.sweepSize)}
            </p>
          ) : null}
        </>
      )}
    </fieldset>
  );
}

export function ExperimentSection(props: {
  choice: IExperimentChoice;
  form: IJobForm;
  update: (patch: Partial<IJobForm>) => void;
  error?: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { choice, form, update, trans } = props;
  const options: IExperiment[] = [...(choice.experiments ?? [])];
  if (choice.selected && !options.some(e => e.experiment_id === choice.selected!.experiment_id)) {
    options.unshift(choice.selected);
  }
  return (
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
            value={choice.query}
            onChange={e => choice.setQuery(e.target.value)}
          />
          <select
            size={Math.min(5, Math.max(2, options.length))}
            className="jp-mod-styled jp-InfinStor-experimentList"
            aria-label={trans.__('Experiment')}
            data-testid="infinstor-job-experiment"
            value={choice.selected?.experiment_id ?? ''}
            onChange={e => choice.select(options.find(x => x.experiment_id === e.target.value) ?? null)}
          >
            {options.map(e => (
              <option key={e.experiment_id} value={e.experiment_id}>
                {e.name}
              </option>
            ))}
          </select>
          {!choice.ready && (
            <p className="jp-InfinStor-hint" role="status" data-testid="infinstor-job-experiments-loading">
              {trans.__('Loading experiments…')}
            </p>
          )}
          {choice.experiments !== null && choice.experiments.length === 0 && (
            <p className="jp-InfinStor-hint">
              {choice.query
                ? trans.__('No experiment matches “%1”.', choice.query)
                : trans.__('No experiments yet: create one.')}
            </p>
          )}
          {choice.error && (
            <p className="jp-InfinStor-fieldError" role="alert" data-testid="infinstor-job-experiment-error">
              {trans.__('Could not list experiments: %1', choice.error)}{' '}
              <button type="button" className="jp-InfinStor-linkButton" onClick={() => choice.retry()}>
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
      {props.error && (choice.ready || form.experimentMode === 'new') && (
        <FieldError testId="infinstor-job-experiment-problem" message={props.error} />
      )}
    </fieldset>
  );
}

export function RunNameRow(props: {
  value: string;
  onChange: (value: string) => void;
  error?: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  return (
    <div className="jp-InfinStor-formRow">
      <label htmlFor="infinstor-job-run-name">{trans.__('Run name')}</label>
      <input
        id="infinstor-job-run-name"
        type="text"
        className={`jp-mod-styled jp-InfinStor-input${props.error ? ' jp-InfinStor-invalid' : ''}`}
        placeholder={trans.__('optional; MLflow picks one')}
        data-testid="infinstor-job-run-name"
        aria-invalid={!!props.error}
        aria-describedby={props.error ? 'infinstor-job-run-name-error' : undefined}
        value={props.value}
        onChange={e => props.onChange(e.target.value)}
      />
      <FieldError id="infinstor-job-run-name-error" testId="infinstor-job-run-name-error" message={props.error} />
    </div>
  );
}

export function ParametersSection(props: {
  kind: string;
  specs: IParameterSpec[];
  fields: Record<string, FieldValue>;
  setField: (name: string, value: FieldValue) => void;
  grid: Record<string, string> | null;
  setGrid: (name: string, value: string) => void;
  errors: Record<string, string>;
  trans: TranslationBundle;
}): JSX.Element {
  const { specs, fields, errors, trans } = props;
  return (
    <fieldset className="jp-InfinStor-formGroup" data-testid="infinstor-job-parameters">
      <legend>{trans.__('Parameters')}</legend>
      {specs.length === 0 && (
        <p className="jp-InfinStor-hint" data-testid="infinstor-job-no-parameters">
          {props.kind === 'notebook'
            ? trans.__('No cell tagged “parameters” in this notebook.')
            : trans.__('The main entry point takes no parameters.')}
        </p>
      )}
      {specs.map(spec => {
        const value = fields[spec.name] ?? initialFieldValue(spec);
        return props.grid ? (
          <GridField
            key={spec.name}
            spec={spec}
            value={props.grid[spec.name] ?? gridText(spec, value)}
            error={errors[spec.name] ?? null}
            onChange={text => props.setGrid(spec.name, text)}
            trans={trans}
          />
        ) : (
          <ParameterField
            key={spec.name}
            spec={spec}
            value={value}
            error={errors[spec.name] ?? null}
            onChange={next => props.setField(spec.name, next)}
            trans={trans}
          />
        );
      })}
    </fieldset>
  );
}

function ParameterLabel(props: { spec: IParameterSpec; id: string; kind: string; trans: TranslationBundle }): JSX.Element {
  return (
    <label htmlFor={props.id} className="jp-InfinStor-paramName">
      {props.spec.name}
      <span className="jp-InfinStor-paramType">
        {' '}
        {props.kind}
        {isRequired(props.spec) ? props.trans.__(', required') : ''}
      </span>
    </label>
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
      <input {...common} className="" type="checkbox" checked={value === true} onChange={e => onChange(e.target.checked)} />
    );
  } else if (kind === 'int' || kind === 'float') {
    input = (
      <input
        {...common}
        type="number"
        // "any": the server judges integers and says so by name.
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
        placeholder={
          kind === 'literal' ? trans.__('Python literal, e.g. %1', spec.type === 'dict' ? "{'a': 1}" : '[1, 2]') : undefined
        }
        value={String(value)}
        onChange={e => onChange(e.target.value)}
      />
    );
  }
  return (
    <div className="jp-InfinStor-paramRow" data-testid={`infinstor-job-param-row-${spec.name}`}>
      <ParameterLabel spec={spec} id={id} kind={kindLabel(spec)} trans={trans} />
      {input}
      <FieldError id={errorId} testId={`infinstor-job-param-error-${spec.name}`} message={error} />
    </div>
  );
}

/** A parameter's field in grid mode: one value, or several separated by commas. */
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
      <ParameterLabel spec={spec} id={id} kind={trans.__('%1 values, comma-separated', kindLabel(spec))} trans={trans} />
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
      <FieldError id={errorId} testId={`infinstor-job-param-error-${spec.name}`} message={error} />
    </div>
  );
}

export function IncludeFolderRow(props: {
  checked: boolean;
  onChange: (checked: boolean) => void;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <div className="jp-InfinStor-formRow jp-InfinStor-checkRow">
      <label>
        <input
          type="checkbox"
          data-testid="infinstor-job-include-folder"
          checked={props.checked}
          onChange={e => props.onChange(e.target.checked)}
        />
        {props.trans.__('Include the files beside the notebook')}
      </label>
    </div>
  );
}
