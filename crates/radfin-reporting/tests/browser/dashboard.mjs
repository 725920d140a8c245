// Drives radfin's dashboard in headless Debian chromium with playwright-core (no browser of its
// own is downloaded). Usage: node dashboard.mjs <dashboard url> [screenshot.png]
//
// Checks: every chart draws series with data (some of it non-zero), every table renders with
// column headers, no console error, page error, failed request or HTTP error; Tab moves the
// focus through the controls, the CSV links and the tables, with a visible focus ring; the period
// selector works from the keyboard; a CSV link downloads CSV with its header; an invoice's PDF
// link downloads a PDF; the page refreshes itself without a reload. Saves a full-page screenshot. Prints "dashboard ok" and exits 0, or
// prints what failed and exits 1.

import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const [url, screenshot = 'dashboard.png'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node dashboard.mjs <dashboard url> [screenshot.png]');
  process.exit(2);
}
const executablePath = process.env.RADFIN_CHROMIUM || '/usr/bin/chromium';
const problems = [];
const fail = (what) => problems.push(what);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Root (CI) cannot use chromium's sandbox.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true, locale: 'en-GB' });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') fail(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => fail(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    const error = r.failure()?.errorText ?? '';
    // A download ends its navigation with ERR_ABORTED: that is not a failure.
    const download = r.url().includes('.csv') || r.url().includes('/documents/pdf');
    if (!(download && error.includes('ERR_ABORTED'))) fail(`request failed: ${r.url()} ${error}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) fail(`HTTP ${r.status()} for ${r.url()}`);
  });

  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => Number(document.body.dataset.refreshed || 0) >= 1, null, { timeout: 60_000 });

  // Every chart: an ECharts instance whose series have data, some of it not zero.
  const charts = await page.evaluate(() =>
    [...document.querySelectorAll('[data-chart]')].map((el) => {
      const instance = echarts.getInstanceByDom(el);
      const option = instance ? instance.getOption() : null;
      const value = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v.value : v);
      const series = option ? option.series.map((s) => ({
        name: s.name,
        points: s.data.length,
        nonZero: s.data.some((v) => value(v) !== null && value(v) !== undefined && Number(value(v)) !== 0),
      })) : [];
      return { chart: el.dataset.chart, instance: Boolean(instance), canvas: Boolean(el.querySelector('canvas')), height: el.clientHeight, label: el.getAttribute('aria-label') || '', series };
    }));
  if (charts.length < 5) fail(`expected 5 charts, found ${charts.length}`);
  for (const c of charts) {
    if (!c.instance || !c.canvas) fail(`chart ${c.chart}: not drawn`);
    if (c.height < 150) fail(`chart ${c.chart}: ${c.height}px high`);
    if (c.series.length === 0 || c.series.some((s) => s.points === 0)) fail(`chart ${c.chart}: a series without data ${JSON.stringify(c.series)}`);
    if (!c.series.some((s) => s.nonZero)) fail(`chart ${c.chart}: nothing but zeros`);
    if (!c.label) fail(`chart ${c.chart}: no accessible description`);
  }

  // Every table: column headers with scope, at least one row; the panels with data have data.
  const tables = await page.evaluate(() =>
    [...document.querySelectorAll('.table-wrap[data-table]')].map((w) => ({
      table: w.dataset.table,
      cols: w.querySelectorAll('thead th[scope="col"]').length,
      rows: w.querySelectorAll('tbody tr').length,
      empty: w.querySelectorAll('td.empty').length,
      rowHeaders: w.querySelectorAll('tbody th[scope="row"]').length,
    })));
  for (const t of tables) {
    if (t.cols === 0 || t.rows === 0) fail(`table ${t.table}: not rendered ${JSON.stringify(t)}`);
    // A rerun of client rules changes no payout: the radiologists' table may be empty.
    if (t.empty > 0 && t.table !== 'rerun-providers') fail(`table ${t.table}: empty`);
    if (t.empty === 0 && t.rowHeaders !== t.rows) fail(`table ${t.table}: rows without a row header`);
  }
  const csvLinks = await page.locator('a.csv').count();
  if (csvLinks < tables.length) fail(`${csvLinks} CSV links for ${tables.length} tables`);
  // Money is the server's exact text: the first trend row's revenue as the API sent it.
  const api = await page.evaluate(async () => (await fetch('/api/trend')).json());
  const kpi = await page.locator('#kpi-revenue').textContent();
  if (kpi !== api.meta.revenue_inr) fail(`revenue shown as ${kpi}, sent as ${api.meta.revenue_inr}`);

  // The keyboard: Tab walks the controls, the CSV links, the tables; focus is visible.
  // Nothing has been focused yet: the first Tab goes to the top of the page.
  const visited = [];
  for (let i = 0; i < 45; i++) {
    await page.keyboard.press('Tab');
    visited.push(await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return {
        what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.dataset.table ? `[${el.dataset.table}]` : ''}${el.className ? `.${String(el.className).split(' ')[0]}` : ''}`,
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
      };
    }));
  }
  const seen = new Set(visited.map((v) => v.what));
  for (const needed of ['select#from', 'select#to', 'select#rerun', 'button#pause']) {
    if (!seen.has(needed)) fail(`Tab never reached ${needed}: ${[...seen].join(', ')}`);
  }
  if (![...seen].some((w) => w.startsWith('a') && w.includes('.csv'))) fail('Tab never reached a CSV link');
  if (![...seen].some((w) => w.startsWith('summary') || w.startsWith('div[top-clients]'))) fail('Tab never reached a table');
  if (seen.size < 20) fail(`Tab visited only ${seen.size} elements`);
  // Past the last control the focus leaves the page (body) before it wraps around.
  const invisible = visited.filter((v) => !v.outline && v.what !== 'body');
  if (invisible.length > 0) fail(`focus not visible on ${[...new Set(invisible.map((v) => v.what))].join(', ')}`);

  // The period selector from the keyboard: the last period as "from", and the page follows.
  const before = Number(await page.evaluate(() => document.body.dataset.refreshed));
  await page.focus('#from');
  await page.keyboard.press('End');
  await page.waitForFunction((n) => Number(document.body.dataset.refreshed) > n, before, { timeout: 30_000 });
  const from = await page.locator('#from').inputValue();
  if (!from) fail('the period selector did not change with the keyboard');
  if (!page.url().includes(`from=${from}`)) fail(`the address does not carry the selection: ${page.url()}`);
  const trendRows = await page.locator('.table-wrap[data-table="trend"] tbody tr').count();
  if (trendRows !== 1) fail(`from the last period, the trend has ${trendRows} rows`);
  await page.focus('#from');
  await page.keyboard.press('Home');
  await page.waitForFunction(() => !new URL(window.location.href).searchParams.get('from'), null, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('.table-wrap[data-table="trend"] tbody tr').length > 1, null, { timeout: 30_000 });

  // A CSV link downloads CSV: its header, then rows.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a.csv[data-table="clients"]').click()]);
  const csv = (await readFile(await download.path(), 'utf8')).split('\n');
  if (csv[0] !== 'client_id,reports,revenue_inr,cogs_inr,margin_inr,margin_pct') fail(`CSV header: ${csv[0]}`);
  if (csv.filter((l) => l).length < 3) fail(`CSV has ${csv.length} lines`);
  if (!download.suggestedFilename().endsWith('.csv')) fail(`CSV named ${download.suggestedFilename()}`);

  // An invoice's PDF link downloads the invoice as PDF.
  const invoiceLink = page.locator('.table-wrap[data-table="documents"] a[aria-label^="PDF of INV/"]').first();
  const [pdfDownload] = await Promise.all([page.waitForEvent('download'), invoiceLink.click()]);
  const pdf = await readFile(await pdfDownload.path());
  if (pdf.subarray(0, 5).toString('latin1') !== '%PDF-') fail('the invoice link did not download a PDF');
  if (!/^INV_.*\.pdf$/.test(pdfDownload.suggestedFilename())) fail(`PDF named ${pdfDownload.suggestedFilename()}`);

  // Live: the page refreshes itself.
  const now = Number(await page.evaluate(() => document.body.dataset.refreshed));
  await page.waitForFunction((n) => Number(document.body.dataset.refreshed) > n, now, { timeout: 30_000 });

  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ charts, tables, focus: [...seen], csv: csv.slice(0, 2) }, null, 1));
} catch (e) {
  fail(`error: ${e.stack || e}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(`dashboard check failed:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log('dashboard ok');
