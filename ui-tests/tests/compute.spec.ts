import { expect, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

/**
 * The Compute view and parameter sweeps in the job dialog, on the main test lab, whose EC2
 * target runs against moto_server (emulated AWS, see seed_moto.py and
 * jupyter_server_test_config.py): instances launch for real in the emulator but never boot,
 * so their jobs wait until the test terminates them from the Compute view. The "not
 * configured" state is checked on the sign-in lab, which has no EC2 settings.
 */

const SIGNIN = require('../signin_setup');

const COMPUTE_ID = 'infinstor-compute';

test.describe.configure({ mode: 'serial' });

const TRAIN = JSON.stringify({
  nbformat: 4,
  nbformat_minor: 5,
  metadata: {
    kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
    language_info: { name: 'python' }
  },
  cells: [
    {
      id: 'params',
      cell_type: 'code',
      execution_count: null,
      metadata: { tags: ['parameters'] },
      outputs: [],
      source: 'lr = 0.1\nepochs = 3\noptimizer = "adam"\n'
    },
    {
      id: 'train',
      cell_type: 'code',
      execution_count: null,
      metadata: {},
      outputs: [],
      source: 'print(lr, epochs, optimizer)'
    }
  ]
});

function computePanel(page: Page): Locator {
  return page.locator(`#${COMPUTE_ID}`);
}

async function openCompute(page: Page): Promise<Locator> {
  await page.evaluate(async () => {
    await (window as any).jupyterapp.commands.execute('infinstor:open-compute');
  });
  const panel = computePanel(page);
  await expect(panel).toBeVisible();
  return panel;
}

async function shot(target: Locator, testInfo: TestInfo, name: string) {
  const body = await target.screenshot({ path: testInfo.outputPath(`${name}.png`), animations: 'disabled' });
  await testInfo.attach(name, { body, contentType: 'image/png' });
}

async function openDialog(page: Page, path: string): Promise<Locator> {
  // Not awaited: the command resolves when the dialog closes.
  await page.evaluate(p => {
    void (window as any).jupyterapp.commands.execute('infinstor:run-job', { path: p });
  }, path);
  const dialog = page.locator('.jp-InfinStor-jobDialog');
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('infinstor-job-form')).toHaveAttribute('data-loaded', 'true', {
    timeout: 60 * 1000
  });
  return dialog;
}

async function terminateFromView(page: Page, panel: Locator, id: string) {
  const row = panel.locator(`[data-testid="infinstor-compute-instance"][data-instance-id="${id}"]`);
  await row.getByRole('button', { name: `Terminate ${id}` }).click();
  const confirm = page.locator('.jp-Dialog').filter({ hasText: 'Terminate instance?' });
  await expect(confirm).toBeVisible();
  await expect(confirm).toContainText(id);
  const [response] = await Promise.all([
    page.waitForResponse(r => /\/compute\/instances\/i-[0-9a-f]+\/terminate(\?\d*)?$/.test(r.url()) && r.url().includes(id)),
    confirm.getByRole('button', { name: 'Terminate' }).click()
  ]);
  expect(response.status()).toBe(200);
  // AWS's answer shows at once; the next listing drops the terminated instance.
  await expect
    // (evaluateAll does not wait for the row, which may vanish at any moment.)
    .poll(() => row.evaluateAll(nodes => (nodes.length ? nodes[0].getAttribute('data-state') : 'gone')))
    .toMatch(/^(shutting-down|terminated|gone)$/);
}

test.describe('InfinStor compute', () => {
  test('the Compute view, the EC2 settings and a sweep on emulated EC2', async ({ page, tmpPath }, testInfo) => {
    test.setTimeout(240 * 1000);
    expect(await page.contents.uploadContent(TRAIN, 'text', `${tmpPath}/train.ipynb`)).toBe(true);

    // The view has its own tab and a palette command; no instances yet; the settings, read-only.
    const tab = page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${COMPUTE_ID}"]`);
    await expect(tab).toBeVisible();
    await page.keyboard.press('Control+Shift+C');
    const palette = page.locator('#command-palette');
    await palette.locator('.lm-CommandPalette-input').fill('InfinStor compute');
    await palette.locator('.lm-CommandPalette-item', { hasText: 'Show InfinStor compute (EC2 instances)' }).click();
    const panel = computePanel(page);
    await expect(panel).toBeVisible();
    await expect(panel.getByTestId('infinstor-compute-empty')).toContainText('No instances', { timeout: 30 * 1000 });
    const settings = panel.getByTestId('infinstor-compute-config');
    await settings.locator('summary').click();
    await expect(settings.getByTestId('infinstor-compute-setting-region')).toHaveText('us-east-1');
    await expect(settings.getByTestId('infinstor-compute-setting-ami')).toHaveText('/infinstor/ui-test/ami');
    await expect(settings.getByTestId('infinstor-compute-setting-allowed_instance_types')).toHaveText('t3.medium, g5.xlarge');
    await expect(settings.getByTestId('infinstor-compute-setting-s3_bucket')).toHaveText('infinstor-ui-test-staging');
    await expect(settings.getByTestId('infinstor-compute-setting-max_instances_per_user')).toHaveText('3');
    await expect(settings.getByTestId('infinstor-compute-setting-tags')).toHaveText('team=ui-tests');
    await expect(settings.getByTestId('infinstor-compute-setting-identity')).toContainText('arn:aws:');
    await expect(settings.locator('input, select, textarea')).toHaveCount(0);
    await expect(settings).not.toContainText('testing'); // the emulator's access key
    await shot(panel, testInfo, 'compute-empty-light');

    // The sweep fields appear for EC2 (it declares sweeps), not for the inline target.
    const dialog = await openDialog(page, `${tmpPath}/train.ipynb`);
    await expect(dialog.getByTestId('infinstor-job-target')).toHaveValue('inline');
    await expect(dialog.getByTestId('infinstor-job-sweep')).toHaveCount(0);
    await dialog.getByTestId('infinstor-job-target').selectOption('ec2');
    await expect(dialog.getByTestId('infinstor-job-instance-type')).toHaveValue('t3.medium');
    const sweep = dialog.getByTestId('infinstor-job-sweep');
    await expect(sweep).toBeVisible();
    await expect(dialog.getByTestId('infinstor-job-sweep-mode-none')).toBeChecked();
    await dialog.getByTestId('infinstor-job-sweep-mode-grid').check();
    const submit = dialog.getByTestId('infinstor-job-submit');

    // Grid: each parameter starts from its value; one value each is not a sweep.
    const lr = dialog.getByTestId('infinstor-job-sweep-values-lr');
    const epochs = dialog.getByTestId('infinstor-job-sweep-values-epochs');
    await expect(lr).toHaveValue('0.1');
    await expect(dialog.getByTestId('infinstor-job-sweep-error')).toHaveText(
      'Give two or more values (comma-separated) for at least one parameter.'
    );
    await expect(submit).toBeDisabled();
    // Invalid values are caught by the server (a dry run), naming the parameter.
    await epochs.fill('3, 4.5');
    await expect(dialog.getByTestId('infinstor-job-param-error-epochs')).toHaveText(
      /^parameter 'epochs' must be an? int like its default 3; got '4\.5'$/
    );
    await expect(epochs).toHaveAttribute('aria-invalid', 'true');
    await expect(submit).toBeDisabled();
    await epochs.fill('3');
    await lr.fill('0.1, 0.1');
    await expect(dialog.getByTestId('infinstor-job-param-error-lr')).toHaveText('Parameter "lr": 0.1 is listed twice.');
    await lr.fill('0.1, 0.01');
    await expect(dialog.getByTestId('infinstor-job-sweep-size')).toHaveAttribute('data-size', '2');
    // "At once" is capped by the admin's limit the server reports (3).
    const atOnce = dialog.getByTestId('infinstor-job-max-instances');
    await expect(dialog.locator('label[for="infinstor-job-max-instances"]')).toContainText('at most 3');
    await atOnce.fill('4');
    await expect(dialog.getByTestId('infinstor-job-max-instances-error')).toHaveText(
      "Run on 1 to 3 instances at once (the admin's limit is 3)."
    );
    await expect(submit).toBeDisabled();
    await atOnce.fill('2');
    await expect(submit).toBeEnabled();

    // A list of sets: bad lines are named.
    await dialog.getByTestId('infinstor-job-sweep-mode-list').check();
    const list = dialog.getByTestId('infinstor-job-sweep-list');
    await list.fill('lr=0.5\nmomentum=0.9');
    await expect(dialog.getByTestId('infinstor-job-sweep-error')).toHaveText(
      'Line 2: there is no parameter "momentum" (parameters: lr, epochs, optimizer).'
    );
    await expect(submit).toBeDisabled();
    await list.fill('lr=0.5\nlr=0.05, optimizer="sgd, nesterov"');
    await expect(dialog.getByTestId('infinstor-job-sweep-size')).toHaveAttribute('data-size', '2');

    // Back to the grid, and run it: two child jobs, two instances at once.
    await dialog.getByTestId('infinstor-job-sweep-mode-grid').check();
    await expect(lr).toHaveValue('0.1, 0.01');
    await dialog.getByTestId('infinstor-job-run-name').fill('galata-sweep');
    await shot(dialog.locator('.jp-Dialog-content'), testInfo, 'dialog-sweep-light');
    const [response] = await Promise.all([
      page.waitForResponse(
        r => /\/infinstor\/api\/jobs(\?\d*)?$/.test(r.url()) && r.request().method() === 'POST'
      ),
      submit.click()
    ]);
    const sent = response.request().postDataJSON();
    // Values go as typed; the server reads them as the notebook's types.
    expect(sent.sweep).toEqual({ grid: { lr: ['0.1', '0.01'] } });
    expect(sent.max_instances).toBe(2);
    expect(sent.parameters).toEqual({ epochs: '3', optimizer: 'adam' });
    expect(response.status()).toBe(201);
    const parent = await response.json();
    expect(parent.kind).toBe('sweep');
    expect(parent.options.children).toHaveLength(2);

    // The Compute view lists both instances, running the sweep's children.
    await openCompute(page);
    const rows = panel.getByTestId('infinstor-compute-instance');
    await expect(rows).toHaveCount(2, { timeout: 60 * 1000 });
    for (const row of await rows.all()) {
      await expect(row).toHaveAttribute('data-state', 'running');
      await expect(row.getByTestId('infinstor-compute-instance-type')).toHaveText('t3.medium');
      await expect(row.getByTestId('infinstor-compute-instance-job')).toHaveText(/^galata-sweep-[12]$/, { timeout: 30 * 1000 });
      await expect(row.getByTestId('infinstor-compute-instance-uptime')).toHaveText(/^\d+[smhd]/);
      await expect(row.getByRole('button', { name: /^Stop i-/ })).toBeEnabled();
    }
    await shot(panel, testInfo, 'compute-instances-light');

    // Terminate one: confirmed, then its child job fails with the reason.
    const ids = await rows.evaluateAll(nodes => nodes.map(n => n.getAttribute('data-instance-id')!));
    const first = ids[0];
    const row = panel.locator(`[data-testid="infinstor-compute-instance"][data-instance-id="${first}"]`);
    await row.getByRole('button', { name: `Terminate ${first}` }).click();
    const keep = page.locator('.jp-Dialog').filter({ hasText: 'Terminate instance?' });
    await expect(keep).toContainText('running on it fails');
    await keep.getByRole('button', { name: 'Keep' }).click();
    await expect(keep).toHaveCount(0);
    await expect(row).toHaveAttribute('data-state', 'running');
    for (const id of ids) {
      await terminateFromView(page, panel, id);
    }
    const job = async (id: string) => (await page.request.get(`/infinstor/api/jobs/${id}`)).json();
    await expect.poll(async () => (await job(parent.id)).status, { timeout: 60 * 1000 }).toBe('FAILED');
    for (const id of parent.options.children as string[]) {
      const child = await job(id);
      expect(child.status).toBe('FAILED');
      expect(child.failure_reason).toMatch(/^Instance i-[0-9a-f]+ was terminated before it picked up the job/);
    }
    // Terminated instances leave the list.
    await panel.getByTestId('infinstor-compute-refresh').click();
    await expect(panel.getByTestId('infinstor-compute-empty')).toBeVisible({ timeout: 30 * 1000 });
  });
});

test.describe('InfinStor compute without EC2', () => {
  // The sign-in lab has no EC2 settings.
  test.use({ baseURL: SIGNIN.baseURL });

  test('says EC2 is not configured and what the admin must set', async ({ page, tmpPath }, testInfo) => {
    const panel = await openCompute(page);
    const empty = panel.getByTestId('infinstor-compute-unavailable');
    await expect(empty).toBeVisible({ timeout: 30 * 1000 });
    await expect(empty).toHaveAttribute('role', 'status');
    await expect(panel.getByTestId('infinstor-compute-reason')).toHaveText(
      'EC2 is not configured: the platform admin must set c.EC2Target.region, c.EC2Target.ami, ' +
        'c.EC2Target.s3_bucket, c.EC2Target.iam_instance_profile (see docs/ec2.md).'
    );
    await expect(panel.getByTestId('infinstor-compute-instances')).toHaveCount(0);
    // The settings show what is missing.
    const settings = panel.getByTestId('infinstor-compute-config');
    await expect(settings).toHaveAttribute('open', '');
    await expect(settings.getByTestId('infinstor-compute-setting-region')).toHaveText('not set (required)');
    await expect(settings.getByTestId('infinstor-compute-setting-default_instance_type')).toHaveText('t3.medium');
    await shot(panel, testInfo, 'compute-not-configured-light');

    // The dialog lists EC2 disabled with the same reason, and offers no sweep.
    expect(await page.contents.uploadContent(TRAIN, 'text', `${tmpPath}/train.ipynb`)).toBe(true);
    const dialog = await openDialog(page, `${tmpPath}/train.ipynb`);
    await expect(dialog.getByTestId('infinstor-job-target-reason-ec2')).toContainText('EC2 is not configured');
    await expect(dialog.getByTestId('infinstor-job-sweep')).toHaveCount(0);
    await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();
    await expect(dialog).toHaveCount(0);
  });
});
