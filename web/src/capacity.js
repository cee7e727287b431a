// The capacity pages (/capacity/instances and /capacity/databases): filters kept in the URL,
// five summary cards, four charts (partial periods marked, the daily trend with its
// forecast), the growth table sortable from its headings and, for admins, capacity limits and
// "aggregate now" with live progress.

import { api, describeError } from './api.js';
import { chartOn, drawChart, FORECAST_DAYS, lineKey } from './charts.js';
import { element, offerDownload, showState, UNFINISHED } from './dom.js';
import { formatCount, formatGib, formatGibChange, formatPercent, humanize, MIB_PER_GIB } from './format.js';

/** What each level plots: chart key → series metric. */
const METRICS = {
  instance: { trend: 'total_size_mb', change: 'total_size_change_mb', 'change-percent': 'total_size_change_percent', yoy: 'yoy_change_percent' },
  database: { trend: 'avg_size_mb', change: 'size_change_mb', 'change-percent': 'size_change_percent', yoy: 'yoy_change_percent' },
};

const CHART_DEFAULTS = { kind: 'line', top: '10', periods: '14' };
const CHART_CONTROLS = Object.keys(CHART_DEFAULTS);
const POLL_MILLISECONDS = 1000;
/** The growth table's controls and their defaults (`growth_…` in the URL). */
const GROWTH_DEFAULTS = { sort: 'growth_mb', periods: '12' };
const GROWTH_ROWS = 20;
const GROWTH_HORIZON_DAYS = 30;
/** Forecasts per request when the trend asks for its lines' (the API's largest page). */
const FORECAST_PAGE = 200;

/** Days until full is read fewest first; growth largest first. */
function defaultOrder(sort) {
  return sort === 'days_until_full' ? 'asc' : 'desc';
}

/** URL parameter of a chart control: `change-percent` + `top` → `change_percent_top`. */
function controlParameter(chart, control) {
  return `${chart.replaceAll('-', '_')}_${control}`;
}

function selectedValues(select) {
  return [...select.selectedOptions].map((option) => option.value);
}

function selectValues(select, values) {
  const wanted = new Set(values);
  for (const option of select.options) option.selected = wanted.has(option.value);
}

export function startCapacityPage(level) {
  const form = document.getElementById('filters');
  const dbTypes = document.getElementById('filter-db-type');
  const instances = document.getElementById('filter-instance');
  const database = document.getElementById('filter-database');
  const period = document.getElementById('filter-period');
  const summaryState = document.getElementById('summary-state');
  const charts = [...document.querySelectorAll('[data-chart]')];
  const growthPeriods = document.getElementById('growth-periods');
  const growthTable = document.getElementById('growth-table');
  const growthState = document.getElementById('growth-state');
  const growthDownload = document.querySelector('#growth [data-download]');
  const growth = { sort: GROWTH_DEFAULTS.sort, order: defaultOrder(GROWTH_DEFAULTS.sort) };
  // The newest request of each panel (the summary, the card, the growth table, each chart):
  // an answer to an older request is dropped, and a control of one panel, which reloads only
  // that panel, never leaves the others waiting for answers they would then drop.
  const newest = new Map();
  /** Starts a request of `panel`; the function returned tells whether it is still the newest. */
  function ticket(panel) {
    const number = (newest.get(panel) ?? 0) + 1;
    newest.set(panel, number);
    return () => newest.get(panel) === number;
  }

  /** The filters as API query parameters (shared by the summary and the series). */
  function filterQuery() {
    const query = new URLSearchParams();
    for (const value of selectedValues(dbTypes)) query.append('db_type', value);
    for (const value of selectedValues(instances)) query.append('instance_id', value);
    if (database && !database.disabled && database.value) query.set('database_name', database.value);
    query.set('period_type', period.value);
    return query;
  }

  /** The page's URL: the filters and every chart's controls. */
  function pageQuery() {
    const query = filterQuery();
    for (const section of charts) {
      for (const control of CHART_CONTROLS) {
        const value = section.querySelector(`[id$="-${control}"]`).value;
        if (value !== CHART_DEFAULTS[control]) query.set(controlParameter(section.dataset.chart, control), value);
      }
    }
    if (growth.sort !== GROWTH_DEFAULTS.sort) query.set('growth_sort', growth.sort);
    if (growth.order !== defaultOrder(growth.sort)) query.set('growth_order', growth.order);
    if (growthPeriods.value !== GROWTH_DEFAULTS.periods) query.set('growth_periods', growthPeriods.value);
    return query;
  }

  function writeUrl(replace) {
    const url = `${window.location.pathname}?${pageQuery()}`;
    if (replace) window.history.replaceState(null, '', url);
    else window.history.pushState(null, '', url);
  }

  async function loadInstanceOptions(keep) {
    const query = new URLSearchParams();
    for (const value of selectedValues(dbTypes)) query.append('db_type', value);
    const options = await api('/instances/options', { query });
    instances.replaceChildren(
      ...options.map((option) =>
        element('option', { value: option.id, selected: keep.includes(String(option.id)) }, `${option.name} (${option.db_type})`),
      ),
    );
  }

  async function loadDatabaseOptions(keep) {
    if (!database) return;
    const chosen = selectedValues(instances);
    const none = element('option', { value: '' }, 'All databases');
    if (chosen.length !== 1) {
      database.replaceChildren(none);
      database.disabled = true;
      return;
    }
    const options = await api('/databases/options', { query: new URLSearchParams({ instance_id: chosen[0] }) });
    database.replaceChildren(
      none,
      ...options.map((option) =>
        element('option', { value: option.database_name, selected: option.database_name === keep }, option.database_name),
      ),
    );
    database.disabled = false;
  }

  /** Sets the form from the URL (page load, back and forward). */
  async function readUrl() {
    const query = new URLSearchParams(window.location.search);
    selectValues(dbTypes, query.getAll('db_type'));
    period.value = query.get('period_type') || 'daily';
    if (!period.value) period.value = 'daily';
    for (const section of charts) {
      for (const control of CHART_CONTROLS) {
        const select = section.querySelector(`[id$="-${control}"]`);
        select.value = query.get(controlParameter(section.dataset.chart, control)) || CHART_DEFAULTS[control];
        if (!select.value) select.value = CHART_DEFAULTS[control];
      }
    }
    growth.sort = ['growth_mb', 'growth_percent', 'days_until_full'].includes(query.get('growth_sort'))
      ? query.get('growth_sort')
      : GROWTH_DEFAULTS.sort;
    growth.order = ['asc', 'desc'].includes(query.get('growth_order')) ? query.get('growth_order') : defaultOrder(growth.sort);
    growthPeriods.value = query.get('growth_periods') || GROWTH_DEFAULTS.periods;
    if (!growthPeriods.value) growthPeriods.value = GROWTH_DEFAULTS.periods;
    await loadInstanceOptions(query.getAll('instance_id'));
    await loadDatabaseOptions(query.get('database_name') || '');
  }

  function setCard(key, value, detail = '') {
    const card = document.querySelector(`[data-card="${key}"]`);
    if (!card) return;
    card.querySelector('.value').textContent = value;
    card.querySelector('.detail').textContent = detail;
  }

  async function refreshSummary() {
    const isCurrent = ticket('summary');
    showState(summaryState, 'Loading the summary…', 'loading');
    try {
      const { summary } = await api(`/capacity/${level}s/summary`, { query: filterQuery() });
      if (!isCurrent()) return;
      const span = `${summary.window.start_date} – ${summary.window.end_date}`;
      const largest = summary.largest
        ? `${summary.largest.instance_name}${summary.largest.database_name ? ` / ${summary.largest.database_name}` : ''}`
        : null;
      // Figures that may still change say so: a missed or pending day must not read as
      // settled growth.
      const partial = summary.includes_partial_periods ? ' · includes a partial period' : '';
      if (level === 'instance') {
        setCard('instance_count', formatCount(summary.total_instances), `with samples in ${span}`);
        setCard('total_size', formatGib(summary.total_size_mb), largest ? `largest: ${largest} (${formatGib(summary.largest.size_mb)})` : '');
        setCard('database_count', formatCount(summary.total_databases), 'in the latest sample of each instance');
        setCard('growth', formatGibChange(summary.growth_mb), `${formatPercent(summary.growth_rate)} in ${span}${partial}`);
      } else {
        setCard('database_count', formatCount(summary.total_databases), `on ${formatCount(summary.total_instances)} ${summary.total_instances === 1 ? 'instance' : 'instances'}`);
        setCard('total_size', formatGib(summary.total_size_mb), `latest ${summary.period_type} period of each database${partial}`);
        setCard('growth', formatGibChange(summary.size_change_mb), `${formatPercent(summary.growth_rate)} in ${span}${partial}`);
        setCard('largest', largest ?? '—', largest ? formatGib(summary.largest.size_mb) : 'no data');
      }
      const empty = level === 'instance' ? summary.total_instances === 0 : summary.total_databases === 0;
      showState(summaryState, empty ? 'No samples match these filters in the window.' : '', empty ? 'empty' : '');
    } catch (error) {
      if (!isCurrent()) return;
      for (const card of document.querySelectorAll('[data-card]')) setCard(card.dataset.card, '—');
      showState(summaryState, describeError(error), 'error');
    }
  }

  async function refreshChart(section) {
    const isCurrent = ticket(`chart:${section.dataset.chart}`);
    const key = section.dataset.chart;
    const state = section.querySelector('.state');
    const canvas = section.querySelector('canvas');
    const box = section.querySelector('.chart-box');
    const control = (name) => section.querySelector(`[id$="-${name}"]`).value;
    const query = filterQuery();
    query.set('metric', METRICS[level][key]);
    query.set('periods', control('periods'));
    query.set('top', control('top'));
    const source = `/api/v1/capacity/${level}s/series?${query}`;
    const download = section.querySelector('[data-download]');
    offerDownload(download, null);
    section.dataset.state = 'loading';
    showState(state, 'Loading…', 'loading');
    try {
      const series = await api(`/capacity/${level}s/series`, { query });
      if (!isCurrent()) return;
      section.dataset.source = source;
      // The file holds the points plotted: the same filters, metric, periods and lines.
      offerDownload(download, series.series.length === 0 ? null : source);
      if (series.series.length === 0) {
        chartOn(canvas)?.destroy();
        box.hidden = true;
        const empty = key === 'yoy' && period.value === 'daily' ? noYearEarlier() : 'No data for these filters in this window.';
        showState(state, empty, 'empty');
        section.dataset.state = 'empty';
        return;
      }
      // The daily trend continues with each line's forecast, when one is published.
      let forecasts = null;
      if (key === 'trend' && period.value === 'daily') {
        forecasts = await lineForecasts(section, series.series, isCurrent);
        if (forecasts === null) return;
      }
      box.hidden = false;
      // Kept on the section for the browser tests (and for a look from the console).
      section.chart = drawChart(canvas, control('kind'), series, level, {
        // Changes against a partial previous period are marked too; a year earlier is complete.
        comparesWithPrevious: key === 'change' || key === 'change-percent',
        forecasts,
      });
      const nothingToPlot = series.series.every((line) => line.values.every((value) => value === null));
      let note = series.truncated ? `Showing the ${series.series.length} largest of ${series.total_series} (by their latest value).` : '';
      if (key === 'yoy' && nothingToPlot) note = noYearEarlier();
      showState(state, note);
      section.dataset.state = 'ready';
    } catch (error) {
      if (!isCurrent()) return;
      chartOn(canvas)?.destroy();
      box.hidden = true;
      showState(state, describeError(error), 'error');
      section.dataset.state = 'error';
    }
  }

  /**
   * The forecasts of the `lines` plotted in `section`, by line key, or null when a newer refresh started.
   * Only the lines' instances are asked for: a fleet's every forecast costs the server a fit per
   * key, and on a large fleet the lines' forecasts need not be among the first page of them.
   * Pages are followed until every line's forecast is found.
   */
  async function lineForecasts(section, lines, isCurrent) {
    const query = forecastQuery(FORECAST_DAYS);
    query.delete('instance_id');
    for (const id of new Set(lines.map((line) => line.instance_id))) query.append('instance_id', String(id));
    query.set('limit', String(FORECAST_PAGE));
    const wanted = new Set(lines.map(lineKey));
    const found = new Map();
    for (let page = 1; ; page += 1) {
      query.set('page', String(page));
      const answer = await api(`/capacity/${level}s/forecast`, { query });
      if (!isCurrent()) return null;
      if (page === 1) section.dataset.forecastSource = `/api/v1/capacity/${level}s/forecast?${query}`;
      for (const item of answer.items) {
        if (wanted.has(lineKey(item))) found.set(lineKey(item), item);
      }
      if (found.size === wanted.size || page >= answer.pages) return found;
    }
  }

  /** Why the year-over-year chart has nothing to plot. */
  function noYearEarlier() {
    return period.value === 'daily'
      ? 'Changes against a year earlier exist for weekly and longer periods.'
      : 'No period in this window has data a year earlier.';
  }

  /** The filters as the forecasts take them (they fit daily sizes whatever the period type). */
  function forecastQuery(horizonDays) {
    const query = filterQuery();
    query.delete('period_type');
    query.set('horizon_days', String(horizonDays));
    return query;
  }

  function keyName(item) {
    return item.database_name ? `${item.instance_name} / ${item.database_name}` : item.instance_name;
  }

  /** The "fewest days until full" card: the first forecast, which is the soonest full. */
  async function refreshDaysUntilFull() {
    const isCurrent = ticket('days_until_full');
    try {
      const query = forecastQuery(GROWTH_HORIZON_DAYS);
      // Only keys with a limit can fill up: the server fits those, not the whole fleet.
      query.set('with_capacity_limit', 'true');
      query.set('limit', '1');
      const found = await api(`/capacity/${level}s/forecast`, { query });
      if (!isCurrent()) return;
      const soonest = found.items[0];
      if (soonest && soonest.days_until_full !== null) {
        const days = soonest.days_until_full;
        setCard('days_until_full', `${days} ${days === 1 ? 'day' : 'days'}`, `${keyName(soonest)} reaches its ${formatGib(soonest.capacity_limit_mb)} limit`);
      } else {
        setCard(
          'days_until_full',
          'None soon',
          found.total === 0 ? 'no key with a capacity limit has daily sizes' : 'no published forecast reaches a capacity limit within its horizon',
        );
      }
    } catch (error) {
      if (!isCurrent()) return;
      setCard('days_until_full', '—', describeError(error));
    }
  }

  function showGrowthOrder() {
    for (const heading of growthTable.querySelectorAll('th[data-sort]')) {
      const sorted = heading.dataset.sort === growth.sort;
      heading.setAttribute('aria-sort', sorted ? (growth.order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
  }

  /** A capacity limit editor (admins): GiB in, MiB to the API; empty removes the limit. */
  function limitEditor(item) {
    const name = keyName(item);
    const input = element('input', {
      type: 'number',
      min: '0.001',
      step: 'any',
      class: 'limit',
      'aria-label': `Capacity limit of ${name} in GiB`,
      value: item.capacity_limit_mb === null ? '' : String(item.capacity_limit_mb / MIB_PER_GIB),
    });
    const error = element('p', { class: 'error', role: 'alert' });
    const save = element('button', { type: 'submit', class: 'secondary' }, 'Set limit');
    const form = element('form', { class: 'limit-form', 'aria-label': `Capacity limit of ${name}` }, input, save, error);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const limit = input.value === '' ? null : Math.round(Number(input.value) * MIB_PER_GIB);
      save.disabled = true;
      try {
        if (item.database_id !== null) {
          await api(`/databases/${item.database_id}/capacity-limit`, { method: 'PUT', body: { capacity_limit_mb: limit } });
        } else {
          await api(`/instances/${item.instance_id}`, { method: 'PUT', body: { capacity_limit_mb: limit } });
        }
        await Promise.all([refreshGrowth(), refreshDaysUntilFull()]);
      } catch (failure) {
        error.textContent = describeError(failure);
        save.disabled = false;
      }
    });
    return form;
  }

  function forecastText(item) {
    if (!item.published) {
      return element('span', { class: 'withheld', title: item.withheld_detail ?? '' }, `Withheld: ${humanize(item.withheld_reason)}`);
    }
    return `${formatGibChange(item.projected_size_mb - item.fitted_size_mb)} → ${formatGib(item.projected_size_mb)}`;
  }

  async function refreshGrowth() {
    const isCurrent = ticket('growth');
    const query = filterQuery();
    query.set('periods', growthPeriods.value);
    query.set('sort', growth.sort);
    query.set('order', growth.order);
    query.set('horizon_days', String(GROWTH_HORIZON_DAYS));
    query.set('limit', String(GROWTH_ROWS));
    showGrowthOrder();
    offerDownload(growthDownload, null);
    growthTable.dataset.state = 'loading';
    showState(growthState, 'Loading…', 'loading');
    try {
      const found = await api(`/capacity/${level}s/growth`, { query });
      if (!isCurrent()) return;
      growthTable.dataset.source = `/api/v1/capacity/${level}s/growth?${query}`;
      // The same query, `limit` included: the file holds the rows shown.
      offerDownload(growthDownload, found.total === 0 ? null : growthTable.dataset.source);
      const editable = growthTable.dataset.editable === 'true';
      growthTable.tBodies[0].replaceChildren(
        ...found.items.map((item) => {
          const size = [formatGib(item.last_size_mb)];
          if (item.is_partial) {
            size.push(element('small', { class: 'partial' }, ` partial: ${item.last_data_count} of ${item.last_expected_count} days`));
          }
          const days = [item.days_until_full === null ? '—' : String(item.days_until_full)];
          if (item.capacity_limit_mb !== null) days.push(element('small', {}, ` of ${formatGib(item.capacity_limit_mb)}`));
          if (editable) days.push(limitEditor(item));
          return element(
            'tr',
            { 'data-key': `${item.instance_id}/${item.database_name ?? ''}` },
            element('th', { scope: 'row' }, keyName(item)),
            element('td', {}, size),
            element('td', {}, formatGibChange(item.growth_mb)),
            element('td', {}, formatPercent(item.growth_percent)),
            element('td', {}, days),
            element('td', {}, forecastText(item)),
          );
        }),
      );
      showState(
        growthState,
        found.total === 0
          ? 'No data for these filters in this window.'
          : found.total > found.items.length
            ? `Showing ${found.items.length} of ${found.total}.`
            : '',
        found.total === 0 ? 'empty' : '',
      );
      growthTable.dataset.state = 'ready';
    } catch (error) {
      if (!isCurrent()) return;
      growthTable.tBodies[0].replaceChildren();
      showState(growthState, describeError(error), 'error');
      growthTable.dataset.state = 'error';
    }
  }

  async function refresh() {
    await Promise.all([
      refreshSummary(),
      refreshDaysUntilFull(),
      refreshGrowth(),
      ...charts.map((section) => refreshChart(section)),
    ]);
  }

  for (const button of growthTable.querySelectorAll('button[data-sort]')) {
    button.addEventListener('click', () => {
      const sort = button.dataset.sort;
      if (sort === growth.sort) {
        growth.order = growth.order === 'asc' ? 'desc' : 'asc';
      } else {
        growth.sort = sort;
        growth.order = defaultOrder(sort);
      }
      writeUrl(true);
      refreshGrowth();
    });
  }
  growthPeriods.addEventListener('change', () => {
    writeUrl(true);
    refreshGrowth();
  });

  dbTypes.addEventListener('change', async () => {
    await loadInstanceOptions(selectedValues(instances));
    await loadDatabaseOptions(database?.value || '');
  });
  instances.addEventListener('change', () => loadDatabaseOptions(database?.value || ''));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    writeUrl(false);
    refresh();
  });
  document.getElementById('filter-reset').addEventListener('click', async () => {
    selectValues(dbTypes, []);
    period.value = 'daily';
    growth.sort = GROWTH_DEFAULTS.sort;
    growth.order = defaultOrder(growth.sort);
    growthPeriods.value = GROWTH_DEFAULTS.periods;
    await loadInstanceOptions([]);
    await loadDatabaseOptions('');
    writeUrl(false);
    refresh();
  });
  for (const section of charts) {
    for (const control of CHART_CONTROLS) {
      section.querySelector(`[id$="-${control}"]`).addEventListener('change', () => {
        writeUrl(true);
        refreshChart(section);
      });
    }
  }
  window.addEventListener('popstate', async () => {
    await readUrl();
    refresh();
  });

  startAggregateNow(refresh);
  readUrl()
    .then(refresh)
    .catch((error) => showState(summaryState, describeError(error), 'error'));
}

/** "Aggregate now" (rendered for admins only): queue, follow the session, then refresh. */
function startAggregateNow(refresh) {
  const form = document.getElementById('aggregate-form');
  if (!form) return;
  const status = document.getElementById('aggregate-status');
  const submit = document.getElementById('aggregate-submit');

  function show(session) {
    const progress = Number(session.progress_percentage);
    const counts = `${session.successful_instances + session.failed_instances + session.cancelled_instances} of ${session.total_instances} instances`;
    status.dataset.status = session.status;
    status.replaceChildren(
      element('a', { href: `/sync-sessions/${session.id}` }, `Session ${session.id}`),
      `: ${session.status} — ${progress.toFixed(0)} % (${counts})`,
      session.error_message ? ` — ${session.error_message}` : '',
      element('progress', { max: 100, value: progress, 'aria-label': 'Aggregation progress' }),
    );
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.dataset.status = 'queueing';
    status.textContent = 'Queueing…';
    try {
      const started = await api('/capacity/aggregations/current', {
        method: 'POST',
        body: {
          scope: document.getElementById('aggregate-scope').value,
          period_type: document.getElementById('aggregate-period').value,
        },
      });
      let session = await api(`/sync-sessions/${started.session_id}`);
      show(session.session);
      while (UNFINISHED.has(session.session.status)) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MILLISECONDS));
        session = await api(`/sync-sessions/${started.session_id}`);
        show(session.session);
      }
      await refresh();
    } catch (error) {
      status.dataset.status = 'error';
      status.textContent = describeError(error);
    } finally {
      submit.disabled = false;
    }
  });
}
