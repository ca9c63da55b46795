import { Dialog } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { IExperiment } from '../../mlflow/types';
import { IJobsClient } from '../client';
import { basename } from '../format';
import { IJob, IJobRequest } from '../types';
import { IExperimentSource, useExperiments, useJobSetup, useServerCheck } from './data';
import {
  buildJobRequest,
  FieldValue,
  gridText,
  IJobForm,
  initialFieldValue,
  ISweepForm,
  serverFieldErrors,
  SweepMode,
  sweepFormFromJob,
  sweepSupport
} from './request';
import {
  ExperimentSection,
  IncludeFolderRow,
  ParametersSection,
  RunNameRow,
  SweepSection,
  TargetSection
} from './sections';

/**
 * Props of {@link JobForm}.
 */
export interface IJobFormProps {
  path: string;
  client: IJobsClient;
  /** Where the dialog finds experiments (the MLflow client). */
  mlflow: IExperimentSource;
  /** The experiment open in the sidebar (a default when the notebook has no runs yet). */
  opened?: IExperiment | null;
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

type FormState = Omit<IJobForm, 'experimentId' | 'kind'>;

/**
 * The job dialog's body: target, experiment, run name, typed parameters, include-folder and
 * target options. The server judges the request as the user types (a dry run) and the form
 * shows its messages beside the fields; Run is enabled once it accepts the request.
 */
export function JobForm(props: IJobFormProps): JSX.Element {
  const { path, client, prefill, trans } = props;
  const setup = useJobSetup(client, path);
  const choice = useExperiments(props.mlflow, { path, preferredId: prefill?.experiment_id, opened: props.opened });
  const [fields, setFields] = React.useState<Record<string, FieldValue> | null>(null);
  const [form, setForm] = React.useState<FormState>(() => ({
    path,
    target: prefill?.target ?? '',
    experimentMode: 'existing',
    experimentName: '',
    runName: prefill?.run_name ?? '',
    includeFolder: prefill?.include_folder ?? false,
    envManager: String(prefill?.options?.env_manager ?? ''),
    instanceType: String(prefill?.options?.instance_type ?? ''),
    sweep: sweepFormFromJob(prefill)
  }));
  const [submitting, setSubmitting] = React.useState(false);
  const [serverError, setServerError] = React.useState<string | null>(null);

  // Once loaded: the fields from the defaults (or the previous job), an available target.
  React.useEffect(() => {
    const { targets, project } = setup;
    if (!targets || !project) {
      return;
    }
    const previous = (prefill?.parameters ?? {}) as Record<string, unknown>;
    setFields(Object.fromEntries(project.parameters.map(spec => [spec.name, initialFieldValue(spec, previous[spec.name])])));
    setForm(f => {
      const target = targets.find(t => t.name === f.target && t.available) ?? targets.find(t => t.available) ?? targets[0];
      const envManagers = target?.capabilities?.env_managers ?? [];
      const instanceTypes = target?.capabilities?.instance_types ?? [];
      return {
        ...f,
        target: target?.name ?? '',
        envManager: envManagers.includes(f.envManager) ? f.envManager : envManagers[0] ?? '',
        instanceType: instanceTypes.includes(f.instanceType) ? f.instanceType : instanceTypes[0] ?? ''
      };
    });
  }, [setup]);

  const loaded = setup.targets !== null && setup.project !== null && fields !== null;
  const specs = setup.project?.parameters ?? [];
  const whole: IJobForm = {
    ...form,
    kind: setup.project?.kind ?? '',
    experimentId: choice.selected?.experiment_id ?? ''
  };
  const check = React.useMemo(
    () => (loaded ? buildJobRequest(whole, specs, fields!, setup.targets!, trans) : null),
    [loaded, JSON.stringify(whole), specs, fields, setup.targets]
  );
  const server = useServerCheck(client, check?.request ?? null);
  const answer = server.error ? serverFieldErrors(null) : serverFieldErrors(server.validation);
  // The form's own messages (what it lacks) win over the server's (what it refuses).
  const errors = { ...answer.errors, ...(check?.errors ?? {}) };
  const parameterErrors = { ...answer.parameterErrors, ...(check?.parameterErrors ?? {}) };
  const accepted = server.current && (server.error !== null || server.validation?.valid === true);
  const ready = loaded && choice.ready && !!check?.complete && accepted;

  React.useLayoutEffect(() => {
    props.onStateChange?.({ ready, submitting });
  }, [ready, submitting]);

  const doSubmit = React.useCallback(async (): Promise<IJob | null> => {
    if (!ready || !check || submitting) {
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
  }, [ready, check, submitting, props.submit]);

  React.useEffect(() => {
    props.registerSubmit?.(doSubmit);
  }, [doSubmit]);

  // Once loaded, move the focus from the form container to its first field.
  const formRef = React.useRef<HTMLDivElement>(null);
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

  const update = (patch: Partial<FormState>) => {
    setServerError(null);
    setForm(f => ({ ...f, ...patch }));
  };
  const setField = (name: string, value: FieldValue) => {
    setServerError(null);
    setFields(f => ({ ...(f ?? {}), [name]: value }));
  };
  const updateSweep = (patch: Partial<ISweepForm>) => {
    setServerError(null);
    setForm(f => ({ ...f, sweep: { ...(f.sweep as ISweepForm), ...patch } }));
  };

  if (setup.error) {
    return (
      <div className="jp-InfinStor-jobForm" data-testid="infinstor-job-form" tabIndex={-1}>
        <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert" data-testid="infinstor-job-load-error">
          {trans.__('Cannot run %1 as a job: %2', path, setup.error)}
        </div>
      </div>
    );
  }
  if (!loaded) {
    return (
      <div className="jp-InfinStor-jobForm" data-testid="infinstor-job-form" tabIndex={-1}>
        <div className="jp-InfinStor-loading" role="status">
          <span className="jp-InfinStor-spinner" aria-hidden="true" />
          {trans.__('Reading the parameters of %1…', basename(path))}
        </div>
      </div>
    );
  }

  const project = setup.project!;
  const targets = setup.targets!;
  const target = targets.find(t => t.name === form.target);
  const sweepForm = form.sweep as ISweepForm;
  const sweepMode: SweepMode = sweepSupport(target).shown ? sweepForm.mode : 'none';
  const setSweepMode = (mode: SweepMode) => {
    const grid = { ...sweepForm.grid };
    if (mode === 'grid') {
      // Start each parameter's values from its single value.
      for (const spec of specs) {
        if (!(spec.name in grid)) {
          grid[spec.name] = gridText(spec, fields![spec.name] ?? initialFieldValue(spec));
        }
      }
    }
    updateSweep({ mode, grid });
  };

  return (
    <div
      className="jp-InfinStor-jobForm"
      tabIndex={-1}
      ref={formRef}
      data-testid="infinstor-job-form"
      data-loaded={choice.ready ? 'true' : 'false'}
      data-checked={server.current ? 'true' : 'false'}
      data-ready={ready ? 'true' : 'false'}
    >
      <p className="jp-InfinStor-jobForm-source" data-testid="infinstor-job-source">
        {project.kind === 'notebook' ? trans.__('Notebook') : trans.__('MLflow project')}
        {': '}
        <code>{project.path || path}</code>
      </p>
      <TargetSection targets={targets} form={whole} update={update} errors={errors} trans={trans} />
      <SweepSection
        target={target}
        specs={specs}
        sweep={sweepForm}
        mode={sweepMode}
        setMode={setSweepMode}
        updateSweep={updateSweep}
        sweepSize={check?.sweepSize}
        errors={errors}
        trans={trans}
      />
      <ExperimentSection choice={choice} form={whole} update={update} error={errors.experiment} trans={trans} />
      <RunNameRow value={form.runName} onChange={runName => update({ runName })} error={errors.runName} trans={trans} />
      <ParametersSection
        kind={project.kind}
        specs={specs}
        fields={fields!}
        setField={setField}
        grid={sweepMode === 'grid' ? sweepForm.grid : null}
        setGrid={(name, text) => updateSweep({ grid: { ...sweepForm.grid, [name]: text } })}
        errors={parameterErrors}
        trans={trans}
      />
      {project.kind === 'notebook' && (
        <IncludeFolderRow checked={form.includeFolder} onChange={includeFolder => update({ includeFolder })} trans={trans} />
      )}
      {errors.general && (
        <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert" data-testid="infinstor-job-check-error">
          {errors.general}
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
 * A dialog that stays open while its Run button submits the job, and when the server refuses
 * it (the form shows the server's message).
 */
export class JobDialog extends Dialog<IJob | null> {
  constructor(options: JobDialog.IOptions) {
    const trans = options.trans ?? nullTranslator.load('infinstor_jupyterlab');
    const body = new JobFormWidget({
      path: options.path,
      client: options.client,
      mlflow: options.mlflow,
      opened: options.opened,
      submit: options.submit,
      prefill: options.prefill,
      trans
    });
    super({
      title: options.prefill ? trans.__('Re-run as MLflow job') : trans.__('Run as MLflow job'),
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
   * Dialog re-enables its accept button on every `input` event from HTML validity alone (after
   * the form may have disabled it): the form decides.
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
    mlflow: IExperimentSource;
    /** The experiment open in the sidebar (a default when the notebook has no runs yet). */
    opened?: IExperiment | null;
    submit: (request: IJobRequest) => Promise<IJob>;
    prefill?: IJob | null;
    trans?: TranslationBundle;
  }
}
