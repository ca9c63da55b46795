import { expect, test } from '@jupyterlab/galata';
import type { Locator, Page, TestInfo } from '@playwright/test';

import { callMlflowProxy } from './helpers';

/**
 * Live cell progress of a notebook job in the Jobs view, the job dialog's default experiment,
 * and the Jobs list in the dark theme: on the embedded tracking service, with real inline jobs.
 */

const JOBS_ID = 'infinstor-jobs';
const JOB_TIMEOUT = 150 * 1000;

test.describe.configure({ mode: 'serial' });

function notebook(cells: string[], parameters?: string): string {
  const all = [
    ...(parameters === undefined ? [] : [{ source: parameters, tags: ['parameters'] }]),
    ...cells.map(source => ({ source, tags: undefined as string[] | undefined }))
  ];
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: all.map((cell, i) => ({
      id: `cell-${i}`,
      cell_type: 'code',
      execution_count: null,
      metadata: cell.tags ? { tags: cell.tags } : {},
      outputs: [],
      source: cell.source
    }))
  });
}

// Three cells: quick, slow with output as it goes, then a failure.
const STEPS = notebook([
  'import time\nx = 40',
  '# train for a while\nfor step in range(12):\n    print(f"step {step} of 12", flush=True)\n    time.sleep(1)\nx + 2',
  'raise ValueError("the data ran out")'
]);

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

async function submit(page: Page, dialog: Locator): Promise<string> {
  const [response] = await Promise.all([
    page.waitForResponse(r => /\/infinstor\/api\/jobs(\?\d*)?$/.test(r.url()) && r.request().method() === 'POST'),
    dialog.getByTestId('infinstor-job-submit').click()
  ]);
  expect(response.status()).toBe(201);
  await expect(dialog).toHaveCount(0);
  return (await response.json()).id as string;
}

async function shot(target: Locator | Page, testInfo: TestInfo, name: string) {
  const body = await target.screenshot({ path: testInfo.outputPath(`${name}.png`), animations: 'disabled' });
  await testInfo.attach(name, { body, contentType: 'image/png' });
}

/**
 * WCAG contrast ratio between an element's text and what is behind it (the nearest opaque
 * background up the tree; colours resolved by the browser, color-mix() included).
 */
async function textContrast(element: Locator): Promise<number> {
  return element.evaluate(el => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 1;
    const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    const rgba = (css: string): number[] => {
      ctx.clearRect(0, 0, 1, 1);
      ctx.fillStyle = css;
      ctx.fillRect(0, 0, 1, 1);
      const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
      return [r, g, b, a / 255];
    };
    let node: Element | null = el;
    let background = [255, 255, 255, 1];
    while (node) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0.99) {
        background = colour;
        break;
      }
      node = node.parentElement;
    }
    const text = rgba(getComputedStyle(el).color);
    const over = text.slice(0, 3).map((c, i) => c * text[3] + background[i] * (1 - text[3]));
    const luminance = (rgb: number[]) =>
      rgb
        .map(c => c / 255)
        .map(c => (c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4)))
        .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    const [l1, l2] = [luminance(over), luminance(background.slice(0, 3))].sort((a, b) => b - a);
    return (l1 + 0.05) / (l2 + 0.05);
  });
}

test.describe('Live cell progress', () => {
  test('follows a notebook job cell by cell, then points at the failing cell', async ({ page, tmpPath }, testInfo) => {
    test.setTimeout(JOB_TIMEOUT + 90 * 1000);
    const path = `${tmpPath}/steps.ipynb`;
    expect(await page.contents.uploadContent(STEPS, 'text', path)).toBe(true);
    const dialog = await openDialog(page, path);
    const id = await submit(page, dialog);

    const panel = page.locator(`#${JOBS_ID}`);
    const row = panel.locator(`[data-testid="infinstor-job-row"][data-job-id="${id}"]`);
    await expect(row).toHaveAttribute('aria-selected', 'true');
    const progress = panel.getByTestId('infinstor-job-progress');
    // The slow cell, while it runs: which cell, its first line, its time ticking, its output so far.
    const summary = progress.getByTestId('infinstor-job-progress-summary');
    await expect(summary).toHaveText('Cell 2 of 3', { timeout: JOB_TIMEOUT });
    await expect(progress.getByTestId('infinstor-job-progress-source')).toHaveText('# train for a while');
    const running = progress.locator('[data-testid="infinstor-job-cell"][data-cell="2"]');
    await expect(running).toHaveAttribute('data-status', 'running');
    const output = running.getByTestId('infinstor-job-cell-output');
    await expect(output).toContainText('step 1 of 12');
    await expect(output).not.toContainText('step 11 of 12');
    const time = progress.getByTestId('infinstor-job-progress-time');
    const before = await time.textContent();
    await expect(time).not.toHaveText(before ?? '', { timeout: 5000 });
    await expect(progress.locator('[data-testid="infinstor-job-cell"][data-cell="1"]')).toHaveAttribute('data-status', 'ok');
    await expect(row).toHaveAttribute('data-status', 'RUNNING');
    await page.theme.setDarkTheme();
    await shot(panel, testInfo, 'progress-running-dark');
    await page.theme.setLightTheme();
    await shot(panel, testInfo, 'progress-running-light');

    // The failure: the failing cell, open, with its traceback; the slow cell ran, with its result.
    await expect(row).toHaveAttribute('data-status', 'FAILED', { timeout: JOB_TIMEOUT });
    await expect(summary).toHaveText('Failed in cell 3 of 3');
    const failed = progress.locator('[data-testid="infinstor-job-cell"][data-cell="3"]');
    await expect(failed).toHaveAttribute('data-status', 'error');
    await expect(failed.getByTestId('infinstor-job-cell-traceback')).toContainText('ValueError: the data ran out');
    await expect(running).toHaveAttribute('data-status', 'ok');
    await running.locator('.jp-InfinStor-cellHead').click();
    await expect(running.getByTestId('infinstor-job-cell-output')).toContainText('step 11 of 12');
    await expect(running.getByTestId('infinstor-job-cell-result')).toHaveText('42');
    await expect(running.getByTestId('infinstor-job-cell-time')).toHaveText(/^1[2-5]s$/);
    await shot(panel, testInfo, 'progress-failed-light');
    await page.theme.setDarkTheme();
    await shot(panel, testInfo, 'progress-failed-dark');
    await page.theme.setLightTheme();
  });

  test("the dialog picks the notebook's experiment, else the one open in the sidebar", async ({ page, tmpPath }, testInfo) => {
    // A run of this notebook (as a kernel would log it) in an experiment of its own.
    const path = `${tmpPath}/picked.ipynb`;
    expect(await page.contents.uploadContent(notebook(['x = 1']), 'text', path)).toBe(true);
    const name = `galata-notebook-exp-${Date.now()}`;
    const created = await callMlflowProxy(page, 'api/2.0/mlflow/experiments/create', { name });
    expect(created.status).toBe(200);
    const run = await callMlflowProxy(page, 'api/2.0/mlflow/runs/create', {
      experiment_id: created.json.experiment_id,
      start_time: Date.now(),
      tags: [{ key: 'mlflow.source.name', value: path }]
    });
    expect(run.status).toBe(200);
    let dialog = await openDialog(page, path);
    await expect(dialog.getByTestId('infinstor-job-experiment').locator('option:checked')).toHaveText(name);
    await shot(dialog.locator('.jp-Dialog-content'), testInfo, 'dialog-notebook-experiment-light');
    await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();

    // A notebook without runs: the experiment open in the sidebar.
    await page.sidebar.openTab('infinstor-sidebar');
    const item = page.getByTestId('infinstor-experiment-item').filter({ hasText: 'churn-model' });
    await item.locator('.jp-InfinStor-listMain').click();
    await expect(page.getByTestId('infinstor-runs-experiment')).toHaveText('churn-model');
    const fresh = `${tmpPath}/fresh.ipynb`;
    expect(await page.contents.uploadContent(notebook(['y = 2']), 'text', fresh)).toBe(true);
    dialog = await openDialog(page, fresh);
    await expect(dialog.getByTestId('infinstor-job-experiment').locator('option:checked')).toHaveText('churn-model');
    await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();
  });

  test('the selected job stays readable in the dark theme', async ({ page, tmpPath }, testInfo) => {
    test.setTimeout(JOB_TIMEOUT + 60 * 1000);
    const path = `${tmpPath}/quick.ipynb`;
    expect(await page.contents.uploadContent(notebook(['print("hi")']), 'text', path)).toBe(true);
    const id = await submit(page, await openDialog(page, path));
    const panel = page.locator(`#${JOBS_ID}`);
    const row = panel.locator(`[data-testid="infinstor-job-row"][data-job-id="${id}"]`);
    await expect(row).toHaveAttribute('aria-selected', 'true');
    await expect(row).toHaveAttribute('data-status', 'FINISHED', { timeout: JOB_TIMEOUT });
    // WCAG AA: at least 4.5 for text, the row's secondary text (duration, target, path) included.
    const tooFaint: string[] = [];
    for (const theme of ['dark', 'light'] as const) {
      await (theme === 'dark' ? page.theme.setDarkTheme() : page.theme.setLightTheme());
      await page.sidebar.openTab(JOBS_ID);
      for (const part of ['infinstor-job-name', 'infinstor-job-duration', 'infinstor-job-target', 'infinstor-job-path']) {
        const ratio = await textContrast(row.getByTestId(part));
        if (ratio < 4.5) {
          tooFaint.push(`${part} in the ${theme} theme: ${ratio.toFixed(2)}`);
        }
      }
      await shot(panel.getByTestId('infinstor-job-list'), testInfo, `jobs-selected-row-${theme}`);
    }
    await page.theme.setLightTheme();
    expect(tooFaint).toEqual([]);
  });
});
