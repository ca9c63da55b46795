import { nullTranslator } from '@jupyterlab/translation';
import { UseSignal } from '@jupyterlab/ui-components';
import React from 'react';
import { act } from 'react';
import { Root } from 'react-dom/client';

import { mountReactRoot, unmountReactRoot } from '../../__tests__/reactRoot';

import { ComputeView } from '../ComputePanel';
import { ComputeModel } from '../model';
import { CONFIG, FakeComputeClient, instance } from './fixtures';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const trans = nullTranslator.load('infinstor_jupyterlab');

describe('ComputeView', () => {
  let container: HTMLDivElement;
  let root: Root;
  let client: FakeComputeClient;
  let model: ComputeModel;
  let confirms: Array<{ title: string; body: string; action: string }>;
  let answer: boolean;
  let shown: string[];

  beforeEach(() => {
    ({ container, root } = mountReactRoot());
    client = new FakeComputeClient();
    model = new ComputeModel({ client, autoStart: false, standby: 'never' });
    confirms = [];
    answer = true;
    shown = [];
  });

  afterEach(() => {
    unmountReactRoot(container, root);
    model.dispose();
  });

  const render = () =>
    act(() =>
      root.render(
        // As ComputePanel renders it: again on every change of the model.
        <UseSignal signal={model.changed} initialSender={model}>
          {() => (
            <ComputeView
              model={model}
              actions={{ showJob: id => void shown.push(id) }}
              confirm={async (title, body, action) => {
                confirms.push({ title, body, action });
                return answer;
              }}
              trans={trans}
              visible={true}
            />
          )}
        </UseSignal>
      )
    );

  const byTestId = (id: string) => container.querySelector(`[data-testid="${id}"]`) as HTMLElement | null;
  const rows = () =>
    Array.from(container.querySelectorAll<HTMLElement>('[data-testid="infinstor-compute-instance"]'));
  const button = (row: HTMLElement, id: string) =>
    row.querySelector(`[data-testid="${id}"]`) as HTMLButtonElement;

  async function load() {
    await act(async () => {
      await model.refresh();
    });
    render();
  }

  it('lists the instances with state, type, uptime, idle time and current job', async () => {
    client.answer.instances = [
      instance('i-0aaa', { uptime: 3725, idle_seconds: 65 }),
      instance('i-0bbb', {
        instance_type: 'g5.xlarge',
        agent: 'busy',
        idle_seconds: null,
        current_job: '0123456789abcdef',
        current_job_title: 'iris-on-ec2'
      }),
      instance('i-0ccc', { state: 'stopped', uptime: null, idle_seconds: null, agent: null, state_reason: 'idle' })
    ];
    await load();
    const [a, b, c] = rows();
    expect(rows()).toHaveLength(3);
    expect(a.getAttribute('data-state')).toBe('running');
    expect(a.getAttribute('aria-label')).toBe('Instance i-0aaa, t3.medium, running');
    expect(a.querySelector('[data-testid="infinstor-compute-instance-uptime"]')!.textContent).toMatch(/^1h 0[12]m$/);
    expect(a.querySelector('[data-testid="infinstor-compute-instance-idle"]')!.textContent).toMatch(/^1m 0\ds$/);
    expect(a.querySelector('[data-testid="infinstor-compute-instance-job"]')!.textContent).toBe('none');
    expect(b.querySelector('[data-testid="infinstor-compute-instance-type"]')!.textContent).toBe('g5.xlarge');
    expect(b.querySelector('[data-testid="infinstor-compute-instance-idle"]')!.textContent).toBe('–');
    const jobLink = b.querySelector('[data-testid="infinstor-compute-instance-job"] button') as HTMLButtonElement;
    expect(jobLink.textContent).toBe('iris-on-ec2');
    act(() => jobLink.click());
    expect(shown).toEqual(['0123456789abcdef']);
    expect(c.querySelector('[data-testid="infinstor-compute-instance-activity"]')!.textContent).toBe('stopped: idle');
    expect(button(c, 'infinstor-compute-stop').disabled).toBe(true);
    expect(button(c, 'infinstor-compute-terminate').disabled).toBe(false);
    expect(button(a, 'infinstor-compute-stop').getAttribute('aria-label')).toBe('Stop i-0aaa');
    // The settings, read-only, with who the server's AWS credentials are.
    expect(byTestId('infinstor-compute-setting-region')!.textContent).toBe('eu-west-1');
    expect(byTestId('infinstor-compute-setting-identity')!.textContent).toBe(CONFIG.identity!.arn);
    expect(container.querySelectorAll('[data-testid="infinstor-compute-config"] input')).toHaveLength(0);
  });

  it('asks before terminating, and does nothing when the user keeps the instance', async () => {
    client.answer.instances = [instance('i-0aaa', { current_job: 'j1', current_job_title: 'train', agent: 'busy' })];
    await load();
    answer = false;
    await act(async () => button(rows()[0], 'infinstor-compute-terminate').click());
    expect(confirms).toHaveLength(1);
    expect(confirms[0].title).toBe('Terminate instance?');
    expect(confirms[0].body).toContain('the job “train” running on it fails');
    expect(client.calls.some(c => c.startsWith('terminate'))).toBe(false);
    answer = true;
    await act(async () => {
      button(rows()[0], 'infinstor-compute-terminate').click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    await act(async () => {
      await model.refresh();
    });
    expect(client.calls).toContain('terminate:i-0aaa');
    expect(rows()[0].getAttribute('data-state')).toBe('shutting-down');
    expect(button(rows()[0], 'infinstor-compute-terminate').disabled).toBe(true);
  });

  it('stops an idle instance without asking', async () => {
    client.answer.instances = [instance('i-0aaa')];
    await load();
    await act(async () => {
      button(rows()[0], 'infinstor-compute-stop').click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    await act(async () => {
      await model.refresh();
    });
    expect(confirms).toHaveLength(0);
    expect(client.calls).toContain('stop:i-0aaa');
    expect(rows()[0].getAttribute('data-state')).toBe('stopping');
  });

  it('shows a refused action', async () => {
    client.answer.instances = [instance('i-0aaa')];
    client.actError = new Error('Could not stop i-0aaa: UnauthorizedOperation: You are not authorized.');
    await load();
    await act(async () => {
      button(rows()[0], 'infinstor-compute-stop').click();
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    expect(byTestId('infinstor-compute-action-error')!.textContent).toContain('UnauthorizedOperation');
  });

  it('says why EC2 is unavailable, with the settings and what is missing', async () => {
    const reason =
      'EC2 is not configured: the platform admin must set c.EC2Target.region, c.EC2Target.s3_bucket (see docs/ec2.md).';
    client.answer = { available: false, reason, instances: [] };
    client.configAnswer = {
      ...CONFIG,
      available: false,
      reason,
      identity: null,
      missing: ['region', 's3_bucket'],
      config: { ...CONFIG.config!, region: '', s3_bucket: '' }
    };
    await load();
    expect(byTestId('infinstor-compute-unavailable')!.getAttribute('role')).toBe('status');
    expect(byTestId('infinstor-compute-reason')!.textContent).toBe(reason);
    expect(byTestId('infinstor-compute-instances')).toBeNull();
    expect(byTestId('infinstor-compute-setting-region')!.getAttribute('data-missing')).toBe('true');
    expect(byTestId('infinstor-compute-setting-s3_bucket')!.textContent).toBe('not set (required)');
    expect(byTestId('infinstor-compute-setting-identity')).toBeNull();
  });

  it('says when there are no instances yet', async () => {
    await load();
    expect(byTestId('infinstor-compute-empty')!.textContent).toContain('No instances');
  });

  it('shows a failed listing', async () => {
    client.listError = new Error('Listing your instances failed: UnauthorizedOperation: no');
    await act(async () => {
      await model.refresh();
    });
    render();
    expect(byTestId('infinstor-compute-error')!.textContent).toContain('UnauthorizedOperation');
    expect(byTestId('infinstor-compute-unavailable')).toBeNull();
  });
});
