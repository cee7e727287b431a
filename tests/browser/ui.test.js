// The web UI in headless Chromium against a running capstats server with seeded data
// (started by bins/capstats-api/tests/browser.rs): login and the way back, filters in the URL,
// charts equal to the series endpoints, aggregate now to the end, runs and schedules, what
// viewers may not see, labels, keyboard, contrast, titles, tablet width, no console errors.
//
// Environment: CAPSTATS_BASE_URL (http://127.0.0.1:PORT), CAPSTATS_PASSWORD (of the users
// `admin` and `viewer`), CAPSTATS_CHROMIUM (default /usr/bin/chromium), and optionally
// CAPSTATS_SCREENSHOT_DIR to save a screenshot of every page there. CAPSTATS_BROWSER_PHASE
// picks the tests to run: `queued` while no worker runs (runs stay queued, so cancelling one
// can be seen), `worker` once one does (the default).

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { parse as parseCsv } from 'csv-parse/sync';
import { chromium } from 'playwright-core';

const base = process.env.CAPSTATS_BASE_URL;
const password = process.env.CAPSTATS_PASSWORD;
const executablePath = process.env.CAPSTATS_CHROMIUM || '/usr/bin/chromium';
const screenshots = process.env.CAPSTATS_SCREENSHOT_DIR;
const phase = process.env.CAPSTATS_BROWSER_PHASE || 'worker';
/** Options of a test that needs runs to stay queued (no worker). */
const QUEUED = { skip: phase !== 'queued' && 'runs only while no worker runs' };
/** Options of a test that needs a worker to execute runs. */
const WITH_WORKER = { skip: phase !== 'worker' && 'runs only with a worker' };
const DESKTOP = { width: 1280, height: 900 };
const TABLET = { width: 768, height: 1024 };
const PAGES = ['/capacity/instances', '/capacity/databases', '/sync-sessions', '/scheduler', '/alerts'];
const CHARTS = ['trend', 'change', 'change-percent', 'yoy'];
const METRICS = {
  instance: { trend: 'total_size_mb', change: 'total_size_change_mb', 'change-percent': 'total_size_change_percent', yoy: 'yoy_change_percent' },
  database: { trend: 'avg_size_mb', change: 'size_change_mb', 'change-percent': 'size_change_percent', yoy: 'yoy_change_percent' },
};

assert.ok(base, 'CAPSTATS_BASE_URL is required');
assert.ok(password, 'CAPSTATS_PASSWORD is required');

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
});

/**
 * A fresh browser context and page that records every console error, page error, failed
 * request and request to another origin in `problems`.
 */
async function openPage(viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()} (${page.url()})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message} (${page.url()})`));
  page.on('requestfailed', (request) => {
    // Navigating away aborts the polls of the page being left; that is not a failure.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') {
      problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith('data:')) {
      problems.push(`request to another origin: ${request.url()}`);
    }
  });
  return { context, page, problems };
}

/**
 * Takes the problems a step provoked on purpose (a rejected request is logged by the browser
 * as a failed resource load) out of `problems`: those containing `text` — every one when
 * `all`, else the first. With `reason`, at least `count` of them must have been reported; the
 * browser reports them a little after the page has shown the failure, so they are waited for.
 */
async function expectProblems(problems, text, { reason, count = 1, all = false } = {}) {
  const matching = () => problems.filter((problem) => problem.includes(text)).length;
  if (reason) {
    const deadline = Date.now() + 5_000;
    while (matching() < count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(matching() >= count, reason);
  }
  const first = problems.findIndex((problem) => problem.includes(text));
  if (!all) {
    if (first >= 0) problems.splice(first, 1);
    return;
  }
  for (let index = problems.length - 1; index >= 0; index -= 1) {
    if (problems[index].includes(text)) problems.splice(index, 1);
  }
}

/** Visits `path` anonymously, is sent to the login page, signs in and lands on `path`. */
async function signIn(page, username, path = '/capacity/instances') {
  await page.goto(`${base}${path}`);
  assert.match(new URL(page.url()).pathname, /^\/login$/, 'anonymous visitors are redirected to the login page');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}${path}`);
}

async function screenshot(page, name) {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

/** Waits until every chart of a capacity page has loaded (drawn, empty or failed). */
async function chartsSettled(page) {
  await page.waitForFunction(
    (keys) =>
      keys.every((key) => {
        const state = document.querySelector(`[data-chart="${key}"]`)?.dataset.state;
        return state === 'ready' || state === 'empty' || state === 'error';
      }),
    CHARTS,
  );
}

/**
 * What a chart draws of the series (its forecast datasets and the days they add left out) and
 * the series request it was drawn from.
 */
async function drawnChart(page, key) {
  return page.$eval(`[data-chart="${key}"]`, (section) => {
    const data = section.chart?.data;
    const history = data ? data.labels.length - (data.futureLabels ?? 0) : 0;
    return {
      state: section.dataset.state,
      source: section.dataset.source,
      type: section.chart?.config.type,
      labels: data ? data.labels.slice(0, history) : [],
      datasets: data
        ? data.datasets
            .filter((dataset) => !dataset.forecast)
            .map((dataset) => ({ label: dataset.label, data: dataset.data.slice(0, history) }))
        : [],
    };
  });
}

/** Waits until the growth table has loaded (or failed). */
async function growthSettled(page) {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('growth-table')?.dataset.state));
}

async function apiData(page, path) {
  const response = await page.request.get(path.startsWith('/api') ? `${base}${path}` : `${base}/api/v1${path}`);
  assert.equal(response.status(), 200, `${path}: ${await response.text()}`);
  return (await response.json()).data;
}

/**
 * Every chart of the page draws exactly what its series endpoint returns: the same labels,
 * one dataset per line named after it, sizes converted from MiB to GiB, gaps kept as null.
 */
async function assertChartsMatchApi(page, level, expected) {
  await chartsSettled(page);
  for (const key of CHARTS) {
    const chart = await drawnChart(page, key);
    assert.ok(chart.source, `${key}: the chart records its series request`);
    const source = new URL(chart.source, base).searchParams;
    assert.equal(source.get('metric'), METRICS[level][key], `${key}: metric`);
    for (const [name, value] of Object.entries(expected)) {
      assert.deepEqual(source.getAll(name), [value].flat(), `${key}: ${name} of the series request`);
    }
    const series = await apiData(page, chart.source);
    if (series.series.length === 0) {
      assert.equal(chart.state, 'empty', `${key}: an empty series shows the empty state`);
      continue;
    }
    assert.equal(chart.state, 'ready', key);
    assert.deepEqual(chart.labels, series.labels, `${key}: labels`);
    const toPlotted = (value) => {
      if (value === null) return null;
      return series.unit === 'MB' ? Number(value) / 1024 : Number(value);
    };
    assert.deepEqual(
      chart.datasets,
      series.series.map((line) => ({
        label: level === 'database' ? `${line.instance_name} / ${line.database_name}` : line.instance_name,
        data: line.values.map(toPlotted),
      })),
      `${key}: datasets`,
    );
  }
}

/** Every form control on the page has a label a screen reader announces. */
async function assertControlsLabelled(page) {
  const unlabelled = await page.$$eval('input:not([type="hidden"]), select, textarea', (controls) =>
    controls
      .filter((control) => control.labels.length === 0 && !control.getAttribute('aria-label'))
      .map((control) => control.id || control.name || control.outerHTML.slice(0, 60)),
  );
  assert.deepEqual(unlabelled, [], 'controls without a label');
}

/** Visible text has a contrast of at least 4.5:1 against its background (WCAG AA). */
async function assertReadableContrast(page) {
  const failures = await page.evaluate(() => {
    const parse = (color) => {
      const parts = color.match(/[\d.]+/g)?.map(Number) ?? [0, 0, 0, 1];
      return { rgb: parts.slice(0, 3), alpha: parts.length > 3 ? parts[3] : 1 };
    };
    const luminance = ([r, g, b]) => {
      const channel = (value) => {
        const c = value / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const background = (node) => {
      for (let current = node; current; current = current.parentElement) {
        const { rgb, alpha } = parse(getComputedStyle(current).backgroundColor);
        if (alpha > 0.5) return rgb;
      }
      return [255, 255, 255];
    };
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const node = text.parentElement;
      if (!text.textContent.trim() || !node || !node.checkVisibility?.()) continue;
      const style = getComputedStyle(node);
      if (style.opacity !== '1' || node.closest('button:disabled, .visually-hidden, .skip-link')) continue;
      const foreground = parse(style.color).rgb;
      const [light, dark] = [luminance(foreground), luminance(background(node))].sort((a, b) => b - a);
      const ratio = (light + 0.05) / (dark + 0.05);
      if (ratio < 4.5) found.push(`${text.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
    }
    return found;
  });
  assert.deepEqual(failures, [], 'text below 4.5:1 contrast');
}

/** The page fits its width: nothing makes the window scroll sideways. */
async function assertNoSidewaysScroll(page) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `the page is ${scrollWidth} px wide in a ${innerWidth} px window`);
}

test('anonymous visitors sign in and come back to the page they asked for; wrong passwords show the reason', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await page.goto(`${base}/scheduler`);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/scheduler');
  assert.equal(await page.title(), 'Sign in · capstats');
  await assertControlsLabelled(page);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  const reason = await page.textContent('#login-error');
  assert.match(reason, /username or password/i);
  // The failed login answers 401, which the browser reports as a failed resource load.
  await expectProblems(problems, '401', { reason: 'the failed login was a 401' });
  await screenshot(page, 'login');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/scheduler`);
  assert.equal(await page.title(), 'Scheduler · capstats');
  // A login link pointing elsewhere is not followed.
  await page.goto(`${base}/login?next=//example.com/`);
  assert.equal(page.url(), `${base}/capacity/instances`);
  await context.close();
  assert.deepEqual(problems, []);
});

test('admin: filters live in the URL, the charts draw what the series endpoints return, the controls change them', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin');
  assert.equal(await page.title(), 'Instance capacity · capstats');
  await assertChartsMatchApi(page, 'instance', { period_type: 'daily', periods: '14', top: '10' });
  // Tooltips name the line and give the value with its unit; a gap says so.
  const tooltips = await page.evaluate(() =>
    ['trend', 'change-percent'].map((key) => {
      const chart = document.querySelector(`[data-chart="${key}"]`).chart;
      const label = chart.options.plugins.tooltip.callbacks.label;
      return [label({ dataset: { label: 'db-1' }, parsed: { y: 1.5 } }), label({ dataset: { label: 'db-1' }, parsed: { y: null } })];
    }),
  );
  assert.deepEqual(tooltips, [
    ['db-1: 1.50 GiB', 'db-1: no value'],
    ['db-1: +1.50 %', 'db-1: no value'],
  ]);
  await page.hover('[data-chart="trend"] canvas');
  const cards = await page.$$eval('[data-card] .value', (values) => values.map((value) => value.textContent));
  assert.equal(cards.length, 5);
  for (const value of cards) assert.notEqual(value, '—', 'every summary card has a value');
  const { summary } = await apiData(page, '/capacity/instances/summary?period_type=daily');
  assert.equal(await page.textContent('[data-card="instance_count"] .value'), String(summary.total_instances));
  assert.match(await page.textContent('[data-card="total_size"] .value'), / GiB$/);
  await screenshot(page, 'capacity-instances');

  // Choose a type and one of its instances, weekly periods.
  const options = await apiData(page, '/instances/options');
  const chosen = options[0];
  await page.selectOption('#filter-db-type', [chosen.db_type]);
  await page.waitForFunction(
    (count) => document.querySelectorAll('#filter-instance option').length === count,
    options.filter((option) => option.db_type === chosen.db_type).length,
  );
  await page.selectOption('#filter-instance', [String(chosen.id)]);
  await page.selectOption('#filter-period', 'weekly');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/period_type=weekly/);
  const url = new URL(page.url());
  assert.deepEqual(url.searchParams.getAll('db_type'), [chosen.db_type]);
  assert.deepEqual(url.searchParams.getAll('instance_id'), [String(chosen.id)]);
  await page.waitForFunction(() => document.querySelector('[data-chart="trend"]').dataset.source?.includes('weekly'));
  await assertChartsMatchApi(page, 'instance', {
    period_type: 'weekly',
    db_type: chosen.db_type,
    instance_id: String(chosen.id),
  });

  // Chart controls: bar, top 5, a 7-period window, kept in the URL.
  await page.selectOption('#trend-kind', 'bar');
  await page.selectOption('#trend-top', '5');
  await page.selectOption('#trend-periods', '7');
  await page.waitForFunction(() => {
    const section = document.querySelector('[data-chart="trend"]');
    return section.dataset.source?.includes('periods=7') && section.dataset.source.includes('top=5') && section.chart?.config.type === 'bar';
  });
  const trend = await drawnChart(page, 'trend');
  assert.equal(trend.type, 'bar');
  assert.equal(trend.labels.length, 7);
  assert.match(page.url(), /trend_kind=bar/);

  // The URL is shareable: a new tab shows the same view.
  const shared = await context.newPage();
  shared.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`));
  await shared.goto(page.url());
  await chartsSettled(shared);
  assert.deepEqual(await shared.$eval('#filter-instance', (select) => [...select.selectedOptions].map((option) => option.value)), [String(chosen.id)]);
  assert.equal(await shared.inputValue('#filter-period'), 'weekly');
  assert.deepEqual(await drawnChart(shared, 'trend'), trend);

  // Reset returns to every instance, daily.
  await page.getByRole('button', { name: 'Reset' }).click();
  await page.waitForFunction(() => !window.location.search.includes('instance_id'));
  assert.equal(await page.inputValue('#filter-period'), 'daily');
  await context.close();
  assert.deepEqual(problems, []);
});

test('a chart control changed while the page loads leaves every other panel to finish', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin');
  await chartsSettled(page);
  // The next summary answer is held until a chart's control has changed.
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  await page.route('**/api/v1/capacity/instances/summary?*', async (route) => {
    await held;
    await route.continue();
  });
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForFunction(() => document.getElementById('summary-state').dataset.kind === 'loading');
  await page.locator('#trend-top').selectOption('5');
  await page.waitForFunction(() => document.querySelector('[data-chart="trend"]').dataset.source?.includes('top=5'));
  release();
  // The summary's answer still shows: the chart's reload did not make it stale.
  await page.waitForFunction(() => document.getElementById('summary-state').dataset.kind !== 'loading');
  const total = await page.locator('[data-card="total_size"] .value').textContent();
  assert.match(total, /GiB/, `the summary card shows its value: ${total}`);
  await chartsSettled(page);
  await context.close();
  assert.deepEqual(problems, []);
});

test('admin: the database page picks a database once exactly one instance is chosen, and its charts match the API', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin', '/capacity/databases');
  assert.equal(await page.title(), 'Database capacity · capstats');
  await assertChartsMatchApi(page, 'database', { period_type: 'daily' });
  assert.equal(await page.isDisabled('#filter-database'), true, 'no database choice without exactly one instance');
  const [instance] = await apiData(page, '/instances/options');
  const databases = await apiData(page, `/databases/options?instance_id=${instance.id}`);
  await page.selectOption('#filter-instance', [String(instance.id)]);
  await page.waitForFunction(() => !document.getElementById('filter-database').disabled);
  await page.selectOption('#filter-database', databases[0].database_name);
  await page.selectOption('#filter-period', 'monthly');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/database_name=/);
  await page.waitForFunction(() => document.querySelector('[data-chart="trend"]').dataset.source?.includes('monthly'));
  await assertChartsMatchApi(page, 'database', {
    period_type: 'monthly',
    instance_id: String(instance.id),
    database_name: databases[0].database_name,
  });
  await screenshot(page, 'capacity-databases');
  await context.close();
  assert.deepEqual(problems, []);
});

test('admin: aggregate now shows the session progressing to its end, then the run is in the history with its records', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin');
  await chartsSettled(page);
  await page.selectOption('#aggregate-scope', 'all');
  await page.selectOption('#aggregate-period', 'daily');
  await page.getByRole('button', { name: 'Aggregate now' }).click();
  await page.waitForFunction(() => document.getElementById('aggregate-status').querySelector('a'));
  const sessionId = (await page.textContent('#aggregate-status a')).replace('Session ', '');
  await page.waitForFunction(() => document.getElementById('aggregate-status').dataset.status === 'completed', null, {
    timeout: 60_000,
  });
  assert.match(await page.textContent('#aggregate-status'), /completed — 100 %/);
  assert.equal(await page.$eval('#aggregate-status progress', (progress) => progress.value), 100);
  const session = await apiData(page, `/sync-sessions/${sessionId}`);
  assert.equal(session.session.status, 'completed');
  await chartsSettled(page);
  await assertChartsMatchApi(page, 'instance', { period_type: 'daily' });

  // The history lists it; its page shows one record per instance.
  await page.getByRole('link', { name: 'Sync sessions' }).click();
  await page.waitForSelector(`#sessions-table tr[data-session-id="${sessionId}"]`);
  assert.equal(await page.title(), 'Sync sessions · capstats');
  const row = await page.textContent(`#sessions-table tr[data-session-id="${sessionId}"]`);
  assert.match(row, /Aggregation/);
  assert.match(row, /Manual/);
  assert.match(row, /completed/);
  await screenshot(page, 'sync-sessions');
  await page.getByRole('link', { name: `#${sessionId}` }).click();
  await page.waitForURL(`${base}/sync-sessions/${sessionId}`);
  await page.waitForFunction(() => document.querySelectorAll('#records-table tbody tr').length > 0);
  assert.equal(await page.locator('#records-table tbody tr').count(), session.records.length);
  assert.equal(await page.isHidden('#cancel-session'), true, 'a finished run cannot be cancelled');
  await screenshot(page, 'sync-session');

  // Filters of the history are in the URL too.
  await page.goto(`${base}/sync-sessions?status=failed`);
  await page.waitForFunction(() => document.getElementById('sessions-state').textContent.length > 0);
  assert.equal(await page.inputValue('#filter-status'), 'failed');
  assert.match(await page.textContent('#sessions-state'), /No sessions match/);
  await context.close();
  assert.deepEqual(problems, []);
});

test('admin: schedules can be paused, resumed, run now and given a cron expression; a bad one shows why', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin', '/scheduler');
  const schedules = await apiData(page, '/scheduler/jobs');
  await page.waitForFunction((count) => document.querySelectorAll('#schedules-table tbody tr').length === count, schedules.length);
  await screenshot(page, 'scheduler');
  const name = 'maintain_partitions';
  const row = () => page.locator(`tr[data-schedule="${name}"]`);
  const original = schedules.find((schedule) => schedule.id === name).cron_expression;

  await row().getByLabel(`Cron expression of ${name}`).fill('61 * * * *');
  await row().getByRole('button', { name: 'Save' }).click();
  await page.waitForFunction((id) => document.getElementById(`cron_expression-${id}-error`).textContent.length > 0, name);
  assert.equal(await row().getByLabel(`Cron expression of ${name}`).getAttribute('aria-invalid'), 'true');
  assert.equal((await apiData(page, `/scheduler/jobs/${name}`)).cron_expression, original, 'nothing saved');
  await expectProblems(problems, '400', { reason: 'the rejected cron was a 400' });

  await row().getByLabel(`Cron expression of ${name}`).fill('15 2 * * *');
  await row().getByRole('button', { name: 'Save' }).click();
  await page.waitForFunction(() => /cron expression set to 15 2/.test(document.getElementById('scheduler-state').textContent));
  assert.equal((await apiData(page, `/scheduler/jobs/${name}`)).cron_expression, '15 2 * * *');

  // Zone, misfire policy and catch-up limit are edited in place too; a bad zone and limit are
  // each named next to their field and nothing is saved.
  await row().getByLabel(`Time zone of ${name}`).fill('Mars/Olympus');
  await row().getByLabel(`Catch-up limit of ${name}`).fill('0');
  await row().getByRole('button', { name: 'Save' }).click();
  await page.waitForFunction((id) => document.getElementById(`catch_up_limit-${id}-error`).textContent.length > 0, name);
  assert.match(await page.textContent(`#timezone-${name}-error`), /unknown time zone `Mars\/Olympus`/);
  assert.equal(await row().getByLabel(`Time zone of ${name}`).getAttribute('aria-invalid'), 'true');
  assert.equal((await apiData(page, `/scheduler/jobs/${name}`)).time_zone, 'UTC', 'nothing saved');
  await expectProblems(problems, '400', { reason: 'the rejected zone and limit were a 400' });
  await row().getByLabel(`Time zone of ${name}`).fill('Europe/Berlin');
  await row().getByLabel(`Misfire policy of ${name}`).selectOption('catch_up');
  await row().getByLabel(`Catch-up limit of ${name}`).fill('4');
  await row().getByRole('button', { name: 'Save' }).click();
  await page.waitForFunction(() => /timezone set to Europe\/Berlin/.test(document.getElementById('scheduler-state').textContent));
  const edited = await apiData(page, `/scheduler/jobs/${name}`);
  assert.deepEqual(
    [edited.time_zone, edited.misfire_policy, edited.catch_up_limit],
    ['Europe/Berlin', 'catch_up', 4],
  );

  await row().getByRole('button', { name: 'Pause' }).click();
  await page.waitForFunction((id) => document.querySelector(`tr[data-schedule="${id}"] .status-paused`), name);
  assert.equal((await apiData(page, `/scheduler/jobs/${name}`)).is_paused, true);
  await row().getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction((id) => document.querySelector(`tr[data-schedule="${id}"] .status-active`), name);
  assert.equal((await apiData(page, `/scheduler/jobs/${name}`)).is_paused, false);

  await row().getByRole('button', { name: 'Run now' }).click();
  await page.waitForFunction(() => /queued/.test(document.getElementById('scheduler-state').textContent));
  await context.close();
  assert.deepEqual(problems, []);
});

test('admin: a backfill queued on the sessions page names bad dates, then runs on a worker to completed', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin', '/sync-sessions');
  await page.waitForSelector('#backfill-form');
  await page.selectOption('#backfill-period', 'yearly');
  await page.fill('#backfill-from', '2026-03-01');
  await page.fill('#backfill-to', '2026-02-01');
  await page.getByRole('button', { name: 'Queue backfill' }).click();
  await page.waitForFunction(() => document.getElementById('backfill-to-error').textContent.length > 0);
  assert.match(await page.textContent('#backfill-to-error'), /lies after/);
  assert.equal(await page.getAttribute('#backfill-to', 'aria-invalid'), 'true');
  await expectProblems(problems, '400', { reason: 'the rejected range was a 400' });

  const today = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - 120 * 86_400_000).toISOString().slice(0, 10);
  await page.selectOption('#backfill-period', 'weekly');
  await page.fill('#backfill-from', from);
  await page.fill('#backfill-to', today);
  await page.getByRole('button', { name: 'Queue backfill' }).click();
  await page.waitForFunction(() => document.querySelector('#backfill-status a'));
  assert.match(await page.textContent('#backfill-status'), /Backfill queued: session/);
  const sessionId = (await page.textContent('#backfill-status a')).replace('session ', '');
  // The list follows the run (it refreshes while runs are unfinished) to its end.
  await page.waitForFunction(
    (id) => /completed/.test(document.querySelector(`#sessions-table tr[data-session-id="${id}"]`)?.textContent ?? ''),
    sessionId,
    { timeout: 60_000 },
  );
  const session = await apiData(page, `/sync-sessions/${sessionId}`);
  assert.equal(session.session.parameters.work.kind, 'backfill');
  assert.equal(session.session.parameters.work.period_type, 'weekly');
  await context.close();
  assert.deepEqual(problems, []);
});

test('admin: partial periods are marked, the daily trend carries its forecast, the growth table sorts from the URL and takes limits', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin', '/capacity/databases');
  await chartsSettled(page);
  await growthSettled(page);

  // The daily trend: one dotted forecast (with a band) per plotted line whose forecast is
  // published, ending at the projected size.
  const trend = await page.$eval('[data-chart="trend"]', (section) => ({
    forecastSource: section.dataset.forecastSource,
    future: section.chart.data.futureLabels,
    datasets: section.chart.data.datasets.map((dataset) => ({
      label: dataset.label,
      forecast: Boolean(dataset.forecast),
      band: Boolean(dataset.band),
      dash: dataset.borderDash ?? null,
      last: dataset.data.at(-1) ?? null,
    })),
  }));
  assert.ok(trend.forecastSource, 'the daily trend asks for forecasts');
  assert.match(
    await page.textContent('[data-chart="yoy"] .state'),
    /weekly and longer periods/,
    'the daily year-over-year chart says why it is empty',
  );
  assert.equal(trend.future, 14, 'the forecast extends the daily trend by 14 days');
  const forecasts = await apiData(page, trend.forecastSource);
  const trendSource = await page.$eval('[data-chart="trend"]', (section) => section.dataset.source);
  const trendLines = (await apiData(page, trendSource)).series;
  const ascending = (values) => [...new Set(values)].sort((left, right) => left - right);
  assert.deepEqual(
    ascending(new URLSearchParams(trend.forecastSource.split('?')[1]).getAll('instance_id').map(Number)),
    ascending(trendLines.map((line) => line.instance_id)),
    "the trend asks for the forecasts of its lines' instances only",
  );
  const plotted = trend.datasets.filter((dataset) => !dataset.forecast).map((dataset) => dataset.label);
  const published = forecasts.items.filter(
    (item) => item.published && plotted.includes(`${item.instance_name} / ${item.database_name}`),
  );
  assert.ok(published.length > 0, 'the seeded data has a published forecast to draw');
  const lines = trend.datasets.filter((dataset) => dataset.forecast && !dataset.band);
  assert.deepEqual(
    lines.map((dataset) => dataset.label).sort(),
    published.map((item) => `${item.instance_name} / ${item.database_name} (forecast)`).sort(),
    'one forecast line per published forecast of a plotted line',
  );
  for (const item of published) {
    const line = lines.find((dataset) => dataset.label === `${item.instance_name} / ${item.database_name} (forecast)`);
    assert.ok(line.dash, 'forecasts are dotted');
    assert.ok(Math.abs(line.last - item.projected_size_mb / 1024) < 1e-9, `${line.label} ends at the projection`);
  }
  assert.equal(trend.datasets.filter((dataset) => dataset.band).length, 2 * published.length, 'each forecast has its band');

  // Weekly: the points of periods that are partial are hollow and their tooltip says so.
  await page.selectOption('#filter-period', 'weekly');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForFunction(() => document.querySelector('[data-chart="trend"]').dataset.source?.includes('weekly'));
  await chartsSettled(page);
  const source = await page.$eval('[data-chart="trend"]', (section) => section.dataset.source);
  const series = await apiData(page, source);
  const drawn = await page.$eval('[data-chart="trend"]', (section) => {
    const chart = section.chart;
    const label = chart.options.plugins.tooltip.callbacks.label;
    return chart.data.datasets.map((dataset, datasetIndex) => ({
      partial: dataset.partial,
      fill: dataset.pointBackgroundColor,
      tooltips: dataset.data.map((value, dataIndex) =>
        label({ dataset, dataIndex, datasetIndex, parsed: { y: value } }),
      ),
    }));
  });
  assert.equal(series.series.length, drawn.length);
  let partialPoints = 0;
  series.series.forEach((line, index) => {
    assert.deepEqual(drawn[index].partial, line.partial, 'the chart marks the points the API calls partial');
    line.partial.forEach((partial, point) => {
      if (!partial) return;
      partialPoints += 1;
      assert.equal(drawn[index].fill[point], '#ffffff', 'a partial point is hollow');
      assert.match(
        drawn[index].tooltips[point],
        new RegExp(`partial: ${line.data_counts[point]} of ${series.expected_counts[point]} days`),
      );
    });
  });
  // The current week has data unless today is a Monday (the data end yesterday).
  const today = new Date();
  if (today.getUTCDay() !== 1) assert.ok(partialPoints > 0, 'the current week is partial');

  // The growth table: sorted by a heading, again to reverse; kept in the URL.
  await growthSettled(page);
  await page.getByRole('button', { name: 'Growth %' }).click();
  await page.waitForURL(/growth_sort=growth_percent/);
  await page.getByRole('button', { name: 'Growth %' }).click();
  await page.waitForURL(/growth_order=asc/);
  await page.waitForFunction(() => {
    const table = document.getElementById('growth-table');
    return table.dataset.state === 'ready' && table.dataset.source.includes('order=asc');
  });
  assert.equal(await page.getAttribute('th[data-sort="growth_percent"]', 'aria-sort'), 'ascending');
  const tableSource = await page.$eval('#growth-table', (table) => table.dataset.source);
  const ranked = await apiData(page, tableSource);
  const keys = await page.$$eval('#growth-table tbody tr', (rows) => rows.map((row) => row.dataset.key));
  assert.deepEqual(keys, ranked.items.map((item) => `${item.instance_id}/${item.database_name ?? ''}`));
  assert.ok(keys.length > 0);
  const shared = await context.newPage();
  await shared.goto(page.url());
  await growthSettled(shared);
  assert.equal(await shared.getAttribute('th[data-sort="growth_percent"]', 'aria-sort'), 'ascending');
  assert.deepEqual(await shared.$$eval('#growth-table tbody tr', (rows) => rows.map((row) => row.dataset.key)), keys);
  await shared.close();

  // A capacity limit set from the table reaches the API and the table.
  const first = ranked.items[0];
  await page.getByLabel(`Capacity limit of ${first.instance_name} / ${first.database_name} in GiB`).fill('4096');
  await page.getByRole('form', { name: `Capacity limit of ${first.instance_name} / ${first.database_name}` }).getByRole('button', { name: 'Set limit' }).click();
  await page.waitForFunction(
    (key) => document.querySelector(`#growth-table tbody tr[data-key="${key}"]`)?.textContent.includes('of 4,096.00 GiB'),
    `${first.instance_id}/${first.database_name}`,
  );
  const [stored] = await apiData(page, `/databases/options?instance_id=${first.instance_id}`).then((options) =>
    options.filter((option) => option.database_name === first.database_name),
  );
  assert.equal(stored.capacity_limit_mb, 4096 * 1024);
  assert.notEqual(await page.textContent('[data-card="days_until_full"] .value'), '—');
  await screenshot(page, 'capacity-growth');
  await context.close();
  assert.deepEqual(problems, []);
});

/**
 * Clicks the "Download CSV" link inside `scope` and reads the file the browser saves: its
 * suggested name and its records (objects by column, parsed by a CSV reader).
 */
test('admin: alert rules are added with each problem at its field, and their events show every delivery attempt', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin', '/alerts');
  await page.waitForSelector('#rules-table tbody tr');
  await page.waitForSelector('#events-table tbody tr');

  // Nothing filled in: each problem is shown next to its field, and nothing is stored.
  await page.click('#rule-submit');
  await page.waitForFunction(() => document.getElementById('rule-name-error').textContent.length > 0);
  assert.equal(await page.getAttribute('#rule-name', 'aria-invalid'), 'true');
  assert.match(await page.textContent('#rule-threshold-error'), /above or below/);
  assert.match(await page.textContent('#rule-channel-target-error'), /needs `url`/);
  await expectProblems(problems, '400', { reason: 'the refused rule was a 400' });
  assert.deepEqual(await apiData(page, '/alerts/rules'), []);

  // A rule every instance trips, notifying a webhook nobody listens at.
  await page.fill('#rule-name', 'instances over 1 MB');
  await page.selectOption('#rule-metric', 'size_mb');
  await page.selectOption('#rule-comparison', 'above');
  await page.fill('#rule-threshold', '1');
  await page.selectOption('#rule-channel-kind', 'webhook');
  await page.fill('#rule-channel-target', 'http://127.0.0.1:9/capstats-hook?token=hook-token');
  await page.fill('#rule-channel-secret', 's3cret');
  await page.click('#rule-submit');
  await page.waitForFunction(() => /instances over 1 MB.*added/.test(document.getElementById('alerts-state').textContent));
  const row = page.locator('#rules-table tbody tr', { hasText: 'instances over 1 MB' });
  assert.match(await row.textContent(), /size_mb > 1/);
  assert.match(await row.textContent(), /webhook http:\/\/127\.0\.0\.1:9\/… \(signed\)/);
  assert.doesNotMatch(await page.content(), /hook-token|s3cret/, 'the URL and secret are never shown');

  // Editing asks for the URL again (it is never shown) and replaces the rule.
  await page.getByRole('button', { name: 'Edit rule instances over 1 MB' }).click();
  assert.equal(await page.inputValue('#rule-name'), 'instances over 1 MB');
  assert.equal(await page.inputValue('#rule-metric'), 'size_mb');
  assert.equal(await page.inputValue('#rule-threshold'), '1');
  assert.equal(await page.inputValue('#rule-channel-target'), '');
  // The stored secret is not shown: an empty field would drop it, so it is asked for again
  // before anything is sent.
  await page.click('#rule-submit');
  await page.waitForFunction(() => /enter it again/.test(document.getElementById('rule-channel-secret-error').textContent));
  await page.fill('#rule-channel-secret', 's3cret');
  // Without the URL, the server names it.
  await page.click('#rule-submit');
  await page.waitForFunction(() => document.getElementById('rule-channel-target-error').textContent.length > 0);
  await expectProblems(problems, '400', { reason: 'the replacement without a URL was a 400' });
  await page.fill('#rule-threshold', '2');
  await page.fill('#rule-channel-target', 'http://127.0.0.1:9/capstats-hook?token=hook-token');
  await page.click('#rule-submit');
  await page.waitForFunction(() => /instances over 1 MB.*replaced/.test(document.getElementById('alerts-state').textContent));
  // The message shows before the table is reloaded: wait for the table itself.
  await page.waitForFunction(() => /size_mb > 2/.test(document.querySelector('#rules-table tbody').textContent));
  assert.match(await row.textContent(), /size_mb > 2/);
  assert.match(await row.textContent(), /\(signed\)/, 'the replacement kept a secret');
  assert.equal((await apiData(page, '/alerts/rules')).length, 1);
  assert.equal(await page.textContent('#rule-submit'), 'Add rule');

  // A run evaluates it: one open event per instance, each delivery attempt and its error shown.
  const csrf = await page.getAttribute('meta[name="csrf-token"]', 'content');
  const started = await page.request.post(`${base}/api/v1/capacity/aggregations/current`, {
    headers: { 'X-CSRFToken': csrf },
    data: { period_type: 'daily', scope: 'instance' },
  });
  assert.equal(started.status(), 202, await started.text());
  const instances = (await apiData(page, '/instances/options')).length;
  const deadline = Date.now() + 60_000;
  for (;;) {
    await page.click('#event-filters button[type="submit"]');
    await page.waitForLoadState('networkidle');
    const shown = await page.locator('#events-table tbody tr[data-event]').count();
    const text = await page.textContent('#events-table tbody');
    if (shown === instances && (text.match(/last error: the request failed/g) ?? []).length === instances) break;
    assert.ok(Date.now() < deadline, `the events did not show their failed deliveries: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const events = await apiData(page, '/alerts/events?state=open');
  assert.equal(events.total, instances);
  const first = page.locator(`#events-table tbody tr[data-event="${events.items[0].id}"]`);
  assert.match(await first.textContent(), /open.*instances over 1 MB \(warning\)/);
  assert.match(await first.textContent(), /open → webhook/);
  await screenshot(page, 'alerts');

  // Deleting the rule takes its events with it.
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Delete rule instances over 1 MB' }).click();
  await page.waitForFunction(() => /deleted/.test(document.getElementById('alerts-state').textContent));
  await page.waitForSelector('#events-table tbody td[colspan]');
  assert.equal((await apiData(page, '/alerts/events')).total, 0);
  await context.close();
  assert.deepEqual(problems, []);
});

async function downloadCsv(page, scope) {
  const link = page.locator(`${scope} [data-download]`);
  await link.waitFor({ state: 'visible' });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const text = readFileSync(await download.path(), 'utf8');
  return {
    href: await link.getAttribute('href'),
    name: download.suggestedFilename(),
    records: parseCsv(text, { columns: true }),
  };
}

test('every chart card and table downloads the rows it shows, with its filters, as CSV', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'viewer', '/capacity/databases?period_type=weekly&db_type=mysql&trend_top=5');
  await chartsSettled(page);
  await growthSettled(page);

  // A chart's file holds its plotted points: the series request's filters, one record per
  // line and period with a value, in the order of the lines.
  for (const key of CHARTS) {
    const chart = await drawnChart(page, key);
    if (chart.state !== 'ready') continue;
    const file = await downloadCsv(page, `[data-chart="${key}"]`);
    const asked = new URL(file.href, base).searchParams;
    const shown = new URL(chart.source, base).searchParams;
    assert.equal(asked.get('format'), 'csv', key);
    asked.delete('format');
    assert.equal(asked.toString(), shown.toString(), `${key}: the download has the chart's filters`);
    assert.equal(shown.get('period_type'), 'weekly');
    assert.deepEqual(shown.getAll('db_type'), ['mysql']);
    assert.match(file.name, new RegExp(`^capstats-database-series-${METRICS.database[key]}-weekly-.*\\.csv$`), file.name);
    const series = await apiData(page, chart.source);
    const expected = [];
    series.series.forEach((line, rank) => {
      line.values.forEach((value, index) => {
        if (line.data_counts[index] === null) return;
        expected.push([String(rank + 1), `${line.instance_name} / ${line.database_name}`, series.labels[index], value]);
      });
    });
    assert.deepEqual(
      file.records.map((record) => [record.rank, `${record.instance_name} / ${record.database_name}`, record.period_start, record.value === '' ? null : Number(record.value)]),
      expected,
      `${key}: the file holds the plotted points`,
    );
    assert.ok(file.records.every((record) => record.db_type === 'mysql'), `${key}: only the filtered engine`);
    const plottedLines = chart.datasets.map((dataset) => dataset.label);
    assert.deepEqual([...new Set(file.records.map((record) => `${record.instance_name} / ${record.database_name}`))], plottedLines, `${key}: the lines drawn`);
  }

  // The growth table's file holds its rows, in their order.
  const file = await downloadCsv(page, '#growth');
  const rows = await page.$$eval('#growth-table tbody tr', (trs) => trs.map((tr) => tr.dataset.key));
  assert.ok(rows.length > 0);
  assert.deepEqual(
    file.records.map((record) => `${record.instance_id}/${record.database_name}`),
    rows,
    'the growth file holds the rows shown',
  );
  assert.match(file.name, /^capstats-database-growth-weekly-/);

  // The sessions table's file: every session of the filters (a file is not paged).
  await page.goto(`${base}/sync-sessions?status=completed`);
  await page.waitForSelector('#sessions-table tbody tr');
  const sessions = await downloadCsv(page, 'main');
  const shownIds = await page.$$eval('#sessions-table tbody tr', (trs) => trs.map((tr) => tr.dataset.sessionId));
  assert.deepEqual(sessions.records.slice(0, shownIds.length).map((record) => record.id), shownIds);
  assert.ok(sessions.records.every((record) => record.status === 'completed'), 'only the filtered status');
  const listed = await apiData(page, '/sync-sessions?status=completed');
  assert.equal(sessions.records.length, listed.total, 'every matching session, all pages');

  // One session's records.
  await page.goto(`${base}/sync-sessions/${shownIds[0]}`);
  await page.waitForSelector('#records-table tbody tr');
  const records = await downloadCsv(page, 'main');
  assert.equal(records.name, `capstats-sync-session-${shownIds[0]}-records.csv`);
  const names = await page.$$eval('#records-table tbody tr td:first-child', (cells) => cells.map((cell) => cell.textContent));
  assert.deepEqual(records.records.map((record) => record.instance_name), names);
  assert.deepEqual(problems, []);
  await context.close();
});

test('viewers see every page without any write control', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'viewer');
  await chartsSettled(page);
  for (const path of PAGES) {
    await page.goto(`${base}${path}`);
    await page.waitForLoadState('networkidle');
    if (path.startsWith('/capacity')) await growthSettled(page);
    for (const selector of ['#aggregate-now', '#aggregate-form', '#backfill-form', '.cron-form', '[data-action]', '#cancel-session', '.limit-form', '#rule-form', '#rules-table']) {
      assert.equal(await page.locator(selector).count(), 0, `${path}: ${selector} is not shown to viewers`);
    }
    assert.equal(await page.getByRole('button', { name: /Aggregate now|Queue backfill|Pause|Resume|Run now|Save|Cancel|Add rule|Delete/ }).count(), 0, path);
  }
  await page.goto(`${base}/scheduler`);
  await page.waitForSelector('#schedules-table tbody tr');
  assert.equal(await page.locator('#schedules-table thead th').count(), 5, 'no actions column');
  const sessions = await apiData(page, '/sync-sessions');
  if (sessions.items.length > 0) {
    await page.goto(`${base}/sync-sessions/${sessions.items[0].id}`);
    await page.waitForLoadState('networkidle');
    assert.equal(await page.locator('#cancel-session').count(), 0);
  }
  await page.goto(`${base}/capacity/instances`);
  await chartsSettled(page);
  await assertChartsMatchApi(page, 'instance', { period_type: 'daily' });
  await screenshot(page, 'capacity-instances-viewer');
  await context.close();
  assert.deepEqual(problems, []);
});

test('every page has its own title, labelled controls, readable contrast, and fits 1280 px and tablet width', WITH_WORKER, async () => {
  for (const viewport of [DESKTOP, TABLET]) {
    const { context, page, problems } = await openPage(viewport);
    await signIn(page, 'admin');
    const titles = new Set();
    for (const path of PAGES) {
      await page.goto(`${base}${path}`);
      await page.waitForLoadState('networkidle');
      if (path.startsWith('/capacity')) await chartsSettled(page);
      const title = await page.title();
      assert.match(title, / · capstats$/, path);
      titles.add(title);
      await assertControlsLabelled(page);
      await assertReadableContrast(page);
      await assertNoSidewaysScroll(page);
      if (viewport === TABLET && path === '/capacity/instances') await screenshot(page, 'capacity-instances-tablet');
    }
    assert.equal(titles.size, PAGES.length, 'titles differ');
    await context.close();
    assert.deepEqual(problems, []);
  }
});

test('the filters work from the keyboard alone', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin');
  await chartsSettled(page);
  // Tab from the skip link into the page, then to the period type.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
  await page.focus('#filter-period');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.inputValue('#filter-period'), 'weekly');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Apply');
  await page.keyboard.press('Enter');
  await page.waitForURL(/period_type=weekly/);
  await chartsSettled(page);
  await assertChartsMatchApi(page, 'instance', { period_type: 'weekly' });
  await context.close();
  assert.deepEqual(problems, []);
});

test('failures show the server’s message, and a session that ends sends the browser to login and back', WITH_WORKER, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin');
  await chartsSettled(page);

  // A series request the server rejects (the UI cannot send periods=0; the test rewrites
  // the request, the answer is the real server's).
  await page.route('**/api/v1/capacity/instances/series?*', (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('periods', '0');
    route.continue({ url: url.toString() });
  });
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForFunction(() => document.querySelector('[data-chart="trend"]').dataset.state === 'error');
  const shown = await page.textContent('[data-chart="trend"] .state');
  assert.match(shown, /invalid/i, 'the envelope message');
  assert.match(shown, /periods: 0 is not between 1 and 366/, 'the field reason');
  await page.unroute('**/api/v1/capacity/instances/series?*');
  await expectProblems(problems, 'status of 400', { reason: 'the three series requests were 400s', count: 3, all: true });

  // Signing in again elsewhere renews the session and its CSRF token: this page's write
  // fails with the server's reason and the advice to reload.
  const again = await page.request.post(`${base}/api/v1/auth/login`, { data: { username: 'admin', password } });
  assert.equal(again.status(), 200);
  const csrf = (await again.json()).data.csrf_token;
  await page.getByRole('button', { name: 'Aggregate now' }).click();
  await page.waitForFunction(() => document.getElementById('aggregate-status').dataset.status === 'error');
  assert.match(await page.textContent('#aggregate-status'), /X-CSRFToken .* reload the page/);
  await expectProblems(problems, 'status of 403', { reason: 'the stale token was a 403', all: true });

  // Signed out elsewhere: the next request sends the browser to login, and back to the
  // same view afterwards.
  await page.selectOption('#filter-period', 'monthly');
  const logout = await page.request.post(`${base}/api/v1/auth/logout`, { headers: { 'X-CSRFToken': csrf } });
  assert.equal(logout.status(), 200);
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/\/login\?next=/);
  const next = new URL(page.url()).searchParams.get('next');
  assert.equal(next, '/capacity/instances?period_type=monthly');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}${next}`);
  await chartsSettled(page);
  assert.equal(await page.inputValue('#filter-period'), 'monthly');
  await context.close();
  // The requests refused after the sign-out are taken out only now, when the browser has
  // reported every one of them; so are reports of the earlier refusals that came late.
  for (const text of ['status of 400', 'status of 403', 'status of 401', 'ERR_ABORTED']) {
    await expectProblems(problems, text, { all: true });
  }
  assert.deepEqual(problems, []);
});

test('admin: a queued run shows as pending and can be cancelled from its page', QUEUED, async () => {
  const { context, page, problems } = await openPage();
  await signIn(page, 'admin');
  await chartsSettled(page);
  await page.selectOption('#aggregate-period', 'monthly');
  await page.getByRole('button', { name: 'Aggregate now' }).click();
  await page.waitForFunction(() => document.getElementById('aggregate-status').dataset.status === 'pending');
  assert.match(await page.textContent('#aggregate-status'), /pending — 0 %/);
  await page.click('#aggregate-status a');
  await page.waitForURL(/\/sync-sessions\/\d+$/);
  const id = page.url().split('/').pop();
  await page.waitForFunction(() => document.querySelector('#session-summary .badge')?.textContent === 'pending');
  assert.equal(await page.isVisible('#cancel-session'), true, 'admins may cancel a queued run');
  await screenshot(page, 'sync-session-pending');
  await page.getByRole('button', { name: 'Cancel this run' }).click();
  await page.waitForFunction(() => /Cancellation requested/.test(document.getElementById('session-state').textContent));
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#session-summary .badge')?.textContent === 'cancelled');
  assert.equal(await page.isHidden('#cancel-session'), true);
  assert.equal((await apiData(page, `/sync-sessions/${id}`)).session.status, 'cancelled');
  await page.goto(`${base}/sync-sessions?status=cancelled`);
  await page.waitForSelector(`#sessions-table tr[data-session-id="${id}"]`);
  await context.close();
  assert.deepEqual(problems, []);
});
