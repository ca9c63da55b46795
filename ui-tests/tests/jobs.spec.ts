import { expect, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

/**
 * The job dialog and the Jobs view, end to end on the embedded tracking
 * service: real notebooks run as inline MLflow jobs.
 */

const JOBS_ID = 'infinstor-jobs';
// Converting, starting `mlflow run` and a kernel takes a while on a shared 2-core host.
const JOB_TIMEOUT = 150 * 1000;

test.describe.configure({ mode: 'serial' });

function notebook(cells: Array<{ source: string; tags?: string[] }>): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: cells.map((cell, i) => ({
      id: `cell-${i}`,
      cell_type: 'code',
      execution_count: null,
      metadata: cell.tags ? { tags: cell.tags } : {},
      outputs: [],
      source: cell.source
    }))
  });
}

const TRAIN = notebook([
  {
    tags: ['parameters'],
    source: 'epochs = 3\nlr = 0.1\nname = "demo"\nverbose = True\nlayers = [16, 8]\n'
  },
  {
    source: [
      'import time',
      'import mlflow',
      'print(f"training {name} for {epochs} epochs, lr={lr}, layers={layers}", flush=True)',
      'for i in range(epochs):',
      '    mlflow.log_metric("loss", 1.0 / (i + 1), step=i)',
      'time.sleep(4)',
      'print("training done", flush=True)'
    ].join('\n')
  }
]);

const FAILING = notebook([
  { tags: ['parameters'], source: 'x = 1\n' },
  { source: 'print("about to fail", flush=True)' },
  { source: 'raise ValueError("boom from the notebook")' }
]);

const LONG = notebook([
  { tags: ['parameters'], source: 'seconds = 600\n' },
  { source: 'import time\nprint("sleeping", flush=True)\ntime.sleep(seconds)' }
]);

async function upload(page: Page, path: string, content: string) {
  expect(await page.contents.uploadContent(content, 'text', path)).toBe(true);
  await page.filebrowser.refresh();
}

function fileItem(page: Page, name: string): Locator {
  return page.locator('.jp-DirListing-item', {
    has: page.locator('.jp-DirListing-itemText', { hasText: new RegExp(`^${name}$`) })
  });
}

async function openDialogFromFileBrowser(page: Page, name: string): Promise<Locator> {
  await page.sidebar.openTab('filebrowser');
  const item = fileItem(page, name);
  await expect(item).toBeVisible();
  await item.click({ button: 'right' });
  const entry = page.locator('.lm-Menu-item:not(.lm-mod-hidden)', { hasText: 'Run as MLflow job…' });
  await expect(entry).toBeVisible();
  await entry.click();
  const dialog = page.locator('.jp-InfinStor-jobDialog');
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('infinstor-job-form')).toHaveAttribute('data-loaded', 'true', {
    timeout: 60 * 1000
  });
  return dialog;
}

/** Submit the dialog; the created job's id. */
async function submit(page: Page, dialog: Locator): Promise<string> {
  const [response] = await Promise.all([
    page.waitForResponse(
      r => /\/infinstor\/api\/jobs(\?\d*)?$/.test(r.url()) && r.request().method() === 'POST'
    ),
    dialog.getByTestId('infinstor-job-submit').click()
  ]);
  expect(response.status()).toBe(201);
  const job = await response.json();
  await expect(dialog).toHaveCount(0);
  return job.id as string;
}

function jobsPanel(page: Page): Locator {
  return page.locator(`#${JOBS_ID}`);
}

function jobRow(page: Page, id: string): Locator {
  return jobsPanel(page).locator(`[data-testid="infinstor-job-row"][data-job-id="${id}"]`);
}

async function shot(target: Locator | Page, testInfo: TestInfo, name: string) {
  const body = await target.screenshot({
    path: testInfo.outputPath(`${name}.png`),
    animations: 'disabled'
  });
  await testInfo.attach(name, { body, contentType: 'image/png' });
}

test.describe('InfinStor jobs', () => {
  test('runs a notebook from the file browser, then re-runs it with edited parameters', async ({
    page,
    tmpPath
  }, testInfo) => {
    test.setTimeout(2 * JOB_TIMEOUT + 60 * 1000);
    await upload(page, `${tmpPath}/train.ipynb`, TRAIN);

    // The Jobs view has its own tab in the left area, with the jobs icon.
    const tab = page.locator(`.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="${JOBS_ID}"]`);
    await expect(tab).toBeVisible();
    await expect(tab).toHaveAttribute('title', 'InfinStor jobs');

    const dialog = await openDialogFromFileBrowser(page, 'train.ipynb');
    await expect(dialog.getByTestId('infinstor-job-source')).toContainText(
      `${tmpPath}/train.ipynb`
    );
    // Target: inline, with its env managers; experiment: Default picked.
    await expect(dialog.getByTestId('infinstor-job-target')).toHaveValue('inline');
    await expect(dialog.getByTestId('infinstor-job-env-manager')).toHaveValue('local');
    await expect(dialog.getByTestId('infinstor-job-include-folder')).not.toBeChecked();
    await expect(
      dialog.getByTestId('infinstor-job-experiment').locator('option:checked')
    ).toHaveText('Default');

    // Parameters pre-filled and typed from the parameters cell.
    const epochs = dialog.getByTestId('infinstor-job-param-epochs');
    await expect(epochs).toHaveValue('3');
    await expect(epochs).toHaveAttribute('type', 'number');
    await expect(epochs).toHaveAttribute('data-param-type', 'int');
    await expect(dialog.getByTestId('infinstor-job-param-lr')).toHaveValue('0.1');
    await expect(dialog.getByTestId('infinstor-job-param-lr')).toHaveAttribute('type', 'number');
    await expect(dialog.getByTestId('infinstor-job-param-name')).toHaveValue('demo');
    await expect(dialog.getByTestId('infinstor-job-param-name')).toHaveAttribute('type', 'text');
    await expect(dialog.getByTestId('infinstor-job-param-verbose')).toBeChecked();
    await expect(dialog.getByTestId('infinstor-job-param-verbose')).toHaveAttribute(
      'type',
      'checkbox'
    );
    await expect(dialog.getByTestId('infinstor-job-param-layers')).toHaveValue('[16, 8]');

    // An invalid int is refused, with the server's message naming the parameter (a dry run of
    // POST jobs as the user types: the dialog has no rules of its own).
    const submitButton = dialog.getByTestId('infinstor-job-submit');
    await expect(submitButton).toBeEnabled();
    const [check] = await Promise.all([
      page.waitForResponse(
        r => /\/infinstor\/api\/jobs\/validate(\?\d*)?$/.test(r.url()) && r.request().postDataJSON().parameters.epochs === '2.5'
      ),
      epochs.fill('2.5')
    ]);
    expect((await check.json()).valid).toBe(false);
    const error = dialog.getByTestId('infinstor-job-param-error-epochs');
    await expect(error).toHaveText(/^parameter 'epochs' must be an? int like its default 3; got '2\.5'$/);
    await expect(epochs).toHaveAttribute('aria-invalid', 'true');
    await expect(submitButton).toBeDisabled();
    // Enter does not submit either.
    await epochs.press('Enter');
    await expect(dialog).toBeVisible();
    // So is a list that is not a list.
    await dialog.getByTestId('infinstor-job-param-layers').fill('{"a": 1}');
    await expect(dialog.getByTestId('infinstor-job-param-error-layers')).toHaveText(
      /^parameter 'layers' must be a list like its default/
    );
    await shot(dialog.locator('.jp-Dialog-content'), testInfo, 'dialog-invalid-light');

    await dialog.getByTestId('infinstor-job-param-layers').fill('[32, 16, 8]');
    await epochs.fill('2');
    await expect(error).toHaveCount(0);
    await expect(submitButton).toBeEnabled();
    const runName = `galata-train-${Date.now()}`;
    await dialog.getByTestId('infinstor-job-run-name').fill(runName);
    await shot(dialog.locator('.jp-Dialog-content'), testInfo, 'dialog-light');

    const id = await submit(page, dialog);

    // The Jobs view opens on the new job.
    await expect(jobsPanel(page)).toBeVisible();
    const row = jobRow(page, id);
    await expect(row).toBeVisible();
    await expect(row).toHaveAttribute('aria-selected', 'true');
    await expect(row.getByTestId('infinstor-job-name')).toHaveText(runName);
    await expect(row.getByTestId('infinstor-job-target')).toHaveText('inline');
    await expect(row.getByTestId('infinstor-job-path')).toHaveText(`${tmpPath}/train.ipynb`);
    await expect(row).toHaveAttribute('data-status', 'RUNNING', { timeout: 60 * 1000 });
    // The duration ticks while it runs.
    const duration = row.getByTestId('infinstor-job-duration');
    const first = await duration.textContent();
    await expect(duration).not.toHaveText(first ?? '', { timeout: 5000 });
    const detail = jobsPanel(page).getByTestId('infinstor-job-detail');
    await expect(detail).toHaveAttribute('data-job-id', id);
    await expect(detail.getByTestId('infinstor-job-cancel')).toBeVisible();
    await shot(jobsPanel(page), testInfo, 'jobs-running-light');

    await expect(row).toHaveAttribute('data-status', 'FINISHED', { timeout: JOB_TIMEOUT });
    const badge = row.getByTestId('infinstor-job-status');
    const [badgeColour, successColour] = await badge.evaluate(el => {
      const probe = document.createElement('span');
      probe.style.color = 'var(--jp-success-color1)';
      document.body.appendChild(probe);
      const expected = getComputedStyle(probe).color;
      probe.remove();
      return [getComputedStyle(el).backgroundColor, expected];
    });
    expect(badgeColour).toBe(successColour);

    // The log tail, read to its end.
    const log = detail.getByTestId('infinstor-job-log');
    await expect(log).toContainText('training demo for 2 epochs, lr=0.1, layers=[32, 16, 8]', {
      timeout: 30 * 1000
    });
    await expect(log).toContainText('training done');
    await expect(detail.getByTestId('infinstor-job-log-state')).toHaveText('complete');
    await expect(detail.getByTestId('infinstor-job-cancel')).toHaveCount(0);
    await expect(detail.getByTestId('infinstor-job-delete')).toBeVisible();
    await expect(detail.getByTestId('infinstor-job-parameters')).toContainText('epochs=2');

    // A success notification with "Show log".
    const toast = page.locator('.Toastify__toast', { hasText: `Job “${runName}” finished` });
    await expect(toast).toBeVisible({ timeout: 20 * 1000 });
    await expect(toast.getByRole('button', { name: 'Show log' })).toBeVisible();
    await shot(page, testInfo, 'jobs-finished-light-page');

    // The run got the notebook's metric and the typed parameters.
    const job = await (await page.request.get(`/infinstor/api/jobs/${id}`)).json();
    const run = await (
      await page.request.get(
        `/infinstor/api/mlflow/ajax-api/2.0/mlflow/runs/get?run_id=${job.run_id}`
      )
    ).json();
    const metrics = Object.fromEntries(
      (run.run.data.metrics ?? []).map((m: any) => [m.key, m.value])
    );
    expect(metrics.loss).toBeCloseTo(0.5);
    const params = Object.fromEntries(
      (run.run.data.params ?? []).map((p: any) => [p.key, p.value])
    );
    expect(params.epochs).toBe('2');

    // Open the run: the MLflow views' run page when that plugin is on, else the MLflow UI in a lab tab.
    const detailCommand = await page.evaluate(() =>
      (window as any).jupyterapp.commands.hasCommand('infinstor:mlflow-open-run')
    );
    const tabs = page.locator('#jp-main-dock-panel .lm-DockPanel-tabBar .lm-TabBar-tab');
    const before = await tabs.count();
    await detail.getByTestId('infinstor-job-open-run').click();
    await expect(tabs).toHaveCount(before + 1);
    if (!detailCommand) {
      const frame = page.locator(`#infinstor-run-${job.run_id} iframe`);
      await expect(frame).toHaveAttribute(
        'src',
        new RegExp(`infinstor/api/mlflow/#/experiments/${job.experiment_id}/runs/${job.run_id}$`)
      );
    }
    await shot(page, testInfo, 'open-run-light-page');
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('application:close'));
    await expect(tabs).toHaveCount(before);

    // Dark theme: the view and the re-run dialog.
    await page.theme.setDarkTheme();
    await page.sidebar.openTab(JOBS_ID);
    await expect(jobsPanel(page)).toBeVisible();
    await shot(jobsPanel(page), testInfo, 'jobs-finished-dark');

    // Re-run with edited parameters: the dialog is pre-filled from the job.
    await detail.getByTestId('infinstor-job-rerun').click();
    const again = page.locator('.jp-InfinStor-jobDialog');
    await expect(again.getByTestId('infinstor-job-form')).toHaveAttribute('data-ready', 'true', {
      timeout: 60 * 1000
    });
    await expect(again.locator('.jp-Dialog-header')).toContainText('Re-run as MLflow job');
    await expect(again.getByTestId('infinstor-job-param-epochs')).toHaveValue('2');
    await expect(again.getByTestId('infinstor-job-param-layers')).toHaveValue('[32, 16, 8]');
    await expect(again.getByTestId('infinstor-job-run-name')).toHaveValue(runName);
    await again.getByTestId('infinstor-job-param-epochs').fill('1');
    await again.getByTestId('infinstor-job-param-name').fill('rerun');
    await again.getByTestId('infinstor-job-run-name').fill(`${runName}-again`);
    await shot(again.locator('.jp-Dialog-content'), testInfo, 'dialog-rerun-dark');
    const second = await submit(page, again);
    expect(second).not.toBe(id);
    const secondRow = jobRow(page, second);
    await expect(secondRow).toHaveAttribute('aria-selected', 'true');
    await expect(secondRow).toHaveAttribute('data-status', 'FINISHED', { timeout: JOB_TIMEOUT });
    await expect(detail.getByTestId('infinstor-job-log')).toContainText(
      'training rerun for 1 epochs',
      { timeout: 30 * 1000 }
    );
    await expect(detail.getByTestId('infinstor-job-parameters')).toContainText('epochs=1');
    await shot(jobsPanel(page), testInfo, 'jobs-rerun-dark');
    await page.theme.setLightTheme();
  });

  test('a failing notebook ends FAILED with its error', async ({ page, tmpPath }, testInfo) => {
    test.setTimeout(JOB_TIMEOUT + 60 * 1000);
    await upload(page, `${tmpPath}/fails.ipynb`, FAILING);
    const dialog = await openDialogFromFileBrowser(page, 'fails.ipynb');
    await expect(dialog.getByTestId('infinstor-job-param-x')).toHaveValue('1');
    const id = await submit(page, dialog);

    const row = jobRow(page, id);
    await expect(row).toHaveAttribute('data-status', 'FAILED', { timeout: JOB_TIMEOUT });
    const detail = jobsPanel(page).getByTestId('infinstor-job-detail');
    await expect(detail.getByTestId('infinstor-job-failure')).toBeVisible();
    const log = detail.getByTestId('infinstor-job-log');
    await expect(log).toContainText('about to fail', { timeout: 30 * 1000 });
    await expect(log).toContainText('boom from the notebook');
    await expect(detail.getByTestId('infinstor-job-log-state')).toHaveText('complete');

    const toast = page.locator('.Toastify__toast', { hasText: 'failed: ValueError: boom from the notebook' });
    await expect(toast).toBeVisible({ timeout: 20 * 1000 });
    await expect(toast).toHaveClass(/Toastify__toast--error/);
    await shot(jobsPanel(page), testInfo, 'jobs-failed-light');

    // "Show log" selects the job.
    await jobsPanel(page).getByTestId('infinstor-job-list').focus();
    await page.keyboard.press('End');
    await toast.getByRole('button', { name: 'Show log' }).click();
    await expect(row).toHaveAttribute('aria-selected', 'true');

    // Ended jobs can be deleted (after a confirmation).
    await detail.getByTestId('infinstor-job-delete').click();
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Delete' }).click();
    await expect(row).toHaveCount(0);
  });

  test('a long job started from the notebook toolbar is cancelled', async ({ page, tmpPath }, testInfo) => {
    test.setTimeout(JOB_TIMEOUT + 60 * 1000);
    await upload(page, `${tmpPath}/long.ipynb`, LONG);
    await page.filebrowser.open(`${tmpPath}/long.ipynb`);
    await expect(page.locator('.jp-NotebookPanel')).toBeVisible();
    const button = page.locator(
      '.jp-NotebookPanel-toolbar [data-command="infinstor:run-job"]'
    );
    await expect(button).toBeVisible();
    await button.click();
    const dialog = page.locator('.jp-InfinStor-jobDialog');
    await expect(dialog.getByTestId('infinstor-job-form')).toHaveAttribute('data-ready', 'true', {
      timeout: 60 * 1000
    });
    await expect(dialog.getByTestId('infinstor-job-param-seconds')).toHaveValue('600');
    const id = await submit(page, dialog);

    const row = jobRow(page, id);
    const detail = jobsPanel(page).getByTestId('infinstor-job-detail');
    await expect(detail.getByTestId('infinstor-job-log')).toContainText('sleeping', {
      timeout: JOB_TIMEOUT
    });
    await expect(row).toHaveAttribute('data-status', 'RUNNING');

    // Cancel asks first; keeping it running changes nothing.
    await detail.getByTestId('infinstor-job-cancel').click();
    const confirm = page.locator('.jp-Dialog', { hasText: 'Cancel job?' });
    await expect(confirm).toBeVisible();
    await shot(confirm.locator('.jp-Dialog-content'), testInfo, 'cancel-confirm-light');
    await confirm.getByRole('button', { name: 'Keep' }).click();
    await expect(row).toHaveAttribute('data-status', 'RUNNING');

    await detail.getByTestId('infinstor-job-cancel').click();
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Cancel job' }).click();
    await expect(row).toHaveAttribute('data-status', 'KILLED', { timeout: 30 * 1000 });
    await expect(detail.getByTestId('infinstor-job-cancel')).toHaveCount(0);
    await shot(jobsPanel(page), testInfo, 'jobs-killed-light');
  });

  test('the dialog shows unavailable targets, hides unusable options and keeps server errors', async ({
    page,
    tmpPath
  }, testInfo) => {
    await page.route('**/infinstor/api/targets*', async route => {
      const response = await route.fetch();
      const body = await response.json();
      body.targets.push(
        {
          name: 'bare',
          display_name: 'Bare target',
          available: true,
          reason: null,
          capabilities: { env_managers: [], instance_types: [] }
        },
        {
          name: 'gpu-cluster',
          display_name: 'GPU cluster',
          available: false,
          reason: 'No cluster credentials configured.',
          capabilities: { env_managers: ['virtualenv'], instance_types: ['t3.small'] }
        }
      );
      await route.fulfill({ response, json: body });
    });
    await page.route(/\/infinstor\/api\/jobs(\?\d*)?$/, async route => {
      if (route.request().method() === 'POST') {
        await route.fulfill({
          status: 409,
          contentType: 'application/json',
          json: { message: 'Target inline is busy right now.', reason: 'target_unavailable' }
        });
      } else {
        await route.continue();
      }
    });
    await upload(page, `${tmpPath}/train.ipynb`, TRAIN);
    // A folder holding an MLproject gets the menu entry too; a plain folder does not.
    await upload(
      page,
      `${tmpPath}/proj/MLproject`,
      'name: proj\nentry_points:\n  main:\n    parameters:\n      alpha: {type: float, default: 0.5}\n      data: {type: string}\n    command: "python -c pass"\n'
    );
    await upload(page, `${tmpPath}/plain/readme.txt`, 'hello');
    await page.filebrowser.refresh();

    await fileItem(page, 'plain').click({ button: 'right' });
    await expect(page.locator('.lm-Menu-item', { hasText: 'Rename' })).toBeVisible();
    await expect(page.locator('.lm-Menu-item', { hasText: 'Run as MLflow job…' })).toBeHidden();
    await page.keyboard.press('Escape');

    const project = await openDialogFromFileBrowser(page, 'proj');
    await expect(project.getByTestId('infinstor-job-source')).toContainText('MLflow project');
    await expect(project.getByTestId('infinstor-job-param-alpha')).toHaveValue('0.5');
    // A required parameter without default blocks Run until given (the server says so).
    await expect(project.getByTestId('infinstor-job-param-error-data')).toHaveText(
      "Missing value for parameter 'data'."
    );
    await expect(project.getByTestId('infinstor-job-submit')).toBeDisabled();
    await project.getByTestId('infinstor-job-param-data').fill('s3://bucket/data');
    await project.getByTestId('infinstor-job-param-alpha').fill('0.25');
    await expect(project.getByTestId('infinstor-job-param-error-data')).toHaveCount(0);
    await expect(project.getByTestId('infinstor-job-submit')).toBeEnabled();
    await expect(project.getByTestId('infinstor-job-include-folder')).toHaveCount(0);
    await project.locator('.jp-Dialog-button.jp-mod-reject').click();
    await expect(project).toHaveCount(0);

    const dialog = await openDialogFromFileBrowser(page, 'train.ipynb');
    const target = dialog.getByTestId('infinstor-job-target');
    const gpu = target.locator('option[value="gpu-cluster"]');
    await expect(gpu).toBeDisabled();
    await expect(gpu).toContainText('No cluster credentials');
    await expect(dialog.getByTestId('infinstor-job-target-reason-gpu-cluster')).toContainText(
      'GPU cluster is unavailable: No cluster credentials configured.'
    );
    await expect(dialog.getByTestId('infinstor-job-env-manager-row')).toBeVisible();
    await expect(dialog.getByTestId('infinstor-job-instance-type-row')).toHaveCount(0);
    await target.selectOption('bare');
    await expect(dialog.getByTestId('infinstor-job-env-manager-row')).toHaveCount(0);
    // The server knows no such target: it says so, and Run waits.
    await expect(dialog.getByTestId('infinstor-job-target-error')).toContainText("Unknown target 'bare'");
    await expect(dialog.getByTestId('infinstor-job-submit')).toBeDisabled();
    await target.selectOption('inline');
    await expect(dialog.getByTestId('infinstor-job-target-error')).toHaveCount(0);

    // A new experiment by name.
    await dialog.getByTestId('infinstor-job-experiment-new').check();
    await expect(dialog.getByTestId('infinstor-job-experiment-problem')).toBeVisible();
    await dialog.getByTestId('infinstor-job-experiment-name').fill('galata-new-experiment');
    await expect(dialog.getByTestId('infinstor-job-experiment-problem')).toHaveCount(0);

    // The server's refusal is shown in the dialog, which stays open.
    await dialog.getByTestId('infinstor-job-submit').click();
    await expect(dialog.getByTestId('infinstor-job-server-error')).toHaveText(
      'Target inline is busy right now.'
    );
    await expect(dialog).toBeVisible();
    await shot(dialog.locator('.jp-Dialog-content'), testInfo, 'dialog-server-error-light');
    await page.theme.setDarkTheme();
    await shot(dialog.locator('.jp-Dialog-content'), testInfo, 'dialog-server-error-dark');
    await page.theme.setLightTheme();
    await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();
    await expect(dialog).toHaveCount(0);
  });

  test('palette runs the current notebook and shows the jobs', async ({ page, tmpPath }) => {
    const hasCommands = await page.evaluate(() => {
      const app = (window as any).jupyterapp;
      return ['infinstor:run-job', 'infinstor:open-jobs'].map(id => app.commands.hasCommand(id));
    });
    expect(hasCommands).toEqual([true, true]);
    await upload(page, `${tmpPath}/train.ipynb`, TRAIN);
    await page.filebrowser.open(`${tmpPath}/train.ipynb`);
    await expect(page.locator('.jp-NotebookPanel')).toBeVisible();
    // Let the notebook settle (kernel started), or it takes the focus back from the palette.
    await expect(page.locator('.jp-StatusBar-Widget', { hasText: 'Idle' }).first()).toBeVisible({
      timeout: 60 * 1000
    });
    const palette = page.locator('#command-palette');
    const item = palette.locator('.lm-CommandPalette-item', { hasText: 'Run as MLflow job…' });
    await expect(async () => {
      if (!(await palette.locator('.lm-CommandPalette-input').isVisible())) {
        await page.evaluate(() =>
          (window as any).jupyterapp.commands.execute('apputils:activate-command-palette')
        );
      }
      await palette.locator('.lm-CommandPalette-input').fill('Run as MLflow', { timeout: 2000 });
      await expect(item).toBeVisible({ timeout: 2000 });
    }).toPass({ timeout: 30 * 1000 });
    // Filed under "InfinStor", enabled because a notebook is current.
    await expect(item).not.toHaveClass(/lm-mod-disabled/);
    await item.click();
    const dialog = page.locator('.jp-InfinStor-jobDialog');
    await expect(dialog.getByTestId('infinstor-job-source')).toContainText(
      `${tmpPath}/train.ipynb`,
      { timeout: 60 * 1000 }
    );
    // The focus is in the dialog (not left in the notebook), so Escape closes it.
    await expect(dialog.locator(':focus')).toHaveCount(1);
    await page.keyboard.press('Escape');
    await expect(dialog).toHaveCount(0);
  });
});
