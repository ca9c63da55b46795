import { TranslationBundle } from '@jupyterlab/translation';
import { Button } from '@jupyterlab/ui-components';
import React from 'react';

import {
  Confirm,
  PollingListView,
  PollingPanel,
  translationBundle,
  useTicker
} from '../common/PollingPanel';
import {
  canAct,
  formatSpan,
  instanceActivity,
  instanceIdle,
  instanceStateKind,
  instanceUptime,
  settingRows
} from './format';
import { computeIcon } from './icons';
import { ComputeModel } from './model';
import { IInstance } from './types';

/** Id of the Compute view widget. */
export const COMPUTE_PANEL_ID = 'infinstor-compute';

/** What the Compute view asks the application to do. */
export interface IComputeActions {
  /** Show a job in the Jobs view. */
  showJob(id: string): void | Promise<void>;
}

export function InstanceStateBadge(props: { state: string }): JSX.Element {
  return (
    <span
      className={`jp-InfinStor-badge jp-InfinStor-instanceState-${instanceStateKind(props.state)}`}
      data-testid="infinstor-compute-instance-state"
      data-state={props.state}
    >
      {props.state}
    </span>
  );
}

export interface IComputeViewProps {
  model: ComputeModel;
  actions: IComputeActions;
  confirm: Confirm;
  trans: TranslationBundle;
  /** Whether the view is on screen (uptimes tick only then). */
  visible: boolean;
}

/**
 * The Compute view: the user's EC2 instances with Stop / Terminate, and the
 * EC2 settings (read-only).
 */
export function ComputeView(props: IComputeViewProps): JSX.Element {
  const { model, trans } = props;
  const instances = model.instances;
  const now = useTicker(props.visible && instances.some(i => i.state === 'running'));
  const [actionError, setActionError] = React.useState<string | null>(null);

  const act = async (instance: IInstance, action: 'stop' | 'terminate') => {
    setActionError(null);
    const busy = !!instance.current_job;
    const job = instance.current_job_title || instance.current_job;
    let ok = true;
    if (action === 'terminate') {
      ok = await props.confirm(
        trans.__('Terminate instance?'),
        busy
          ? trans.__(
              'Terminate %1 (%2)? Its disk is deleted and the job “%3” running on it fails. This cannot be undone.',
              instance.id,
              instance.instance_type,
              job ?? ''
            )
          : trans.__(
              'Terminate %1 (%2)? Its disk is deleted; the next job of this type launches a new instance. This cannot be undone.',
              instance.id,
              instance.instance_type
            ),
        trans.__('Terminate')
      );
    } else if (busy) {
      ok = await props.confirm(
        trans.__('Stop instance?'),
        trans.__('Stop %1? The job “%2” running on it fails.', instance.id, job ?? ''),
        trans.__('Stop')
      );
    }
    if (!ok) {
      return;
    }
    try {
      await (action === 'stop' ? model.stop(instance.id) : model.terminate(instance.id));
    } catch (error) {
      setActionError(error instanceof Error ? error.message : String(error));
    }
  };

  const config = model.config;
  const rows = config ? settingRows(config) : [];

  // Once loaded: why EC2 cannot be used, that there are no instances, or the instances.
  const body =
    !model.available && !model.error ? (
      <div className="jp-InfinStor-computeEmpty" role="status" data-testid="infinstor-compute-unavailable">
        <p className="jp-InfinStor-computeEmptyTitle">{trans.__('EC2 jobs are not available here.')}</p>
        <p data-testid="infinstor-compute-reason">{model.reason || trans.__('EC2 is not configured.')}</p>
      </div>
    ) : model.available && instances.length === 0 ? (
      <p className="jp-InfinStor-hint jp-InfinStor-computeEmpty" data-testid="infinstor-compute-empty">
        {trans.__(
          'No instances. One starts when you run a job on EC2 (“Run as MLflow job…”, target EC2), and stops itself when idle.'
        )}
      </p>
    ) : model.available ? (
      <ul className="jp-InfinStor-instanceList" aria-label={trans.__('Your EC2 instances')} data-testid="infinstor-compute-instances">
        {instances.map(instance => {
          const pending = model.pending(instance.id);
          const uptime = instanceUptime(instance, model.fetchedAt, now);
          const idle = instanceIdle(instance, model.fetchedAt, now);
          const label = instance.name ? `${instance.id} (${instance.name})` : instance.id;
          return (
            <li
              key={instance.id}
              className="jp-InfinStor-instanceRow"
              aria-label={trans.__('Instance %1, %2, %3', instance.id, instance.instance_type, instance.state)}
              data-testid="infinstor-compute-instance"
              data-instance-id={instance.id}
              data-state={instance.state}
            >
              <div className="jp-InfinStor-instanceMain">
                <InstanceStateBadge state={instance.state} />
                <span className="jp-InfinStor-instanceId" title={label} data-testid="infinstor-compute-instance-id">
                  {instance.id}
                </span>
                <span className="jp-InfinStor-instanceType" data-testid="infinstor-compute-instance-type">
                  {instance.instance_type}
                </span>
              </div>
              <dl className="jp-InfinStor-instanceFields">
                <dt>{trans.__('Uptime')}</dt>
                <dd data-testid="infinstor-compute-instance-uptime">{formatSpan(uptime)}</dd>
                <dt>{trans.__('Idle')}</dt>
                <dd data-testid="infinstor-compute-instance-idle">{formatSpan(idle)}</dd>
                <dt>{trans.__('Job')}</dt>
                <dd data-testid="infinstor-compute-instance-job">
                  {instance.current_job ? (
                    <button
                      type="button"
                      className="jp-InfinStor-linkButton"
                      title={trans.__('Show job %1 in the Jobs view', instance.current_job)}
                      onClick={() => void props.actions.showJob(instance.current_job!)}
                    >
                      {instance.current_job_title || instance.current_job}
                    </button>
                  ) : (
                    trans.__('none')
                  )}
                </dd>
                <dt>{trans.__('State')}</dt>
                <dd data-testid="infinstor-compute-instance-activity">{instanceActivity(instance)}</dd>
              </dl>
              <div className="jp-InfinStor-instanceActions">
                <Button
                  small
                  className="jp-mod-styled"
                  aria-label={trans.__('Stop %1', instance.id)}
                  data-testid="infinstor-compute-stop"
                  disabled={pending !== null || !canAct(instance.state, 'stop')}
                  onClick={() => void act(instance, 'stop')}
                >
                  {pending === 'stop' ? trans.__('Stopping…') : trans.__('Stop')}
                </Button>
                <Button
                  small
                  className="jp-mod-styled jp-mod-warn"
                  aria-label={trans.__('Terminate %1', instance.id)}
                  data-testid="infinstor-compute-terminate"
                  disabled={pending !== null || !canAct(instance.state, 'terminate')}
                  onClick={() => void act(instance, 'terminate')}
                >
                  {pending === 'terminate' ? trans.__('Terminating…') : trans.__('Terminate')}
                </Button>
              </div>
            </li>
          );
        })}
      </ul>
    ) : null;

  return (
    <PollingListView
      model={model}
      className="jp-InfinStor-compute"
      icon={computeIcon}
      title={trans.__('Compute (EC2)')}
      refreshLabel={trans.__('Refresh instances')}
      testIdPrefix="infinstor-compute"
      describeError={error => trans.__('Could not list your instances: %1', error.message)}
      loadingText={trans.__('Loading instances…')}
      notices={
        actionError && (
          <div className="jp-InfinStor-banner jp-InfinStor-banner-error" role="alert" data-testid="infinstor-compute-action-error">
            {actionError}
          </div>
        )
      }
      body={body}
    >
      {model.configError && (
        <p className="jp-InfinStor-fieldError jp-InfinStor-computeConfigError" role="alert" data-testid="infinstor-compute-config-error">
          {trans.__('Could not read the EC2 settings: %1', model.configError.message)}
        </p>
      )}

      {config && config.enabled && rows.length > 0 && (
        <details className="jp-InfinStor-computeConfig" data-testid="infinstor-compute-config" open={!model.available}>
          <summary>{trans.__('EC2 settings (read-only, set by the platform admin)')}</summary>
          <dl className="jp-InfinStor-fields">
            {rows.map(row => (
              <React.Fragment key={row.key}>
                <dt>{trans.__(row.label)}</dt>
                <dd
                  className={row.missing ? 'jp-InfinStor-settingMissing' : undefined}
                  data-testid={`infinstor-compute-setting-${row.key}`}
                  data-missing={row.missing ? 'true' : 'false'}
                >
                  {row.missing ? trans.__('not set (required)') : row.value}
                </dd>
              </React.Fragment>
            ))}
            {config.identity && (
              <>
                <dt>{trans.__('AWS identity')}</dt>
                <dd className="jp-InfinStor-uri" data-testid="infinstor-compute-setting-identity">
                  {config.identity.arn}
                </dd>
              </>
            )}
          </dl>
          <p className="jp-InfinStor-hint">
            {trans.__('Set in the Jupyter server’s configuration (c.EC2Target.*); see docs/ec2.md.')}
          </p>
        </details>
      )}
    </PollingListView>
  );
}

/**
 * The Compute view widget (left area).
 */
export class ComputePanel extends PollingPanel<ComputeModel> {
  constructor(options: ComputePanel.IOptions) {
    const trans = translationBundle(options.translator);
    super({
      ...options,
      id: options.id ?? COMPUTE_PANEL_ID,
      className: 'jp-InfinStor-computePanel',
      icon: computeIcon,
      caption: trans.__('InfinStor compute (EC2 instances)'),
      label: trans.__('InfinStor compute')
    });
    this._actions = options.actions;
  }

  protected onAfterShow(msg: any): void {
    super.onAfterShow(msg);
    // Polling stands by while hidden: catch up at once.
    void this.model.refresh();
    this.update();
  }

  protected renderView(): JSX.Element {
    return (
      <ComputeView
        model={this.model}
        actions={this._actions}
        confirm={this.confirm}
        trans={this.trans}
        visible={this.isVisible}
      />
    );
  }

  private _actions: IComputeActions;
}

export namespace ComputePanel {
  export interface IOptions extends PollingPanel.ICommonOptions<ComputeModel> {
    actions: IComputeActions;
  }
}
