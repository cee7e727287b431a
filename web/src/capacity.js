// The capacity pages (/capacity/instances and /capacity/databases): filters kept in the URL,
// four summary cards, three charts and, for admins, "aggregate now" with live progress.

import { api, describeError } from './api.js';
import { chartOn, drawChart } from './charts.js';
import { element, showState, UNFINISHED } from './dom.js';
import { formatCount, formatGib, formatGibChange, formatPercent } from './format.js';

/** What each level plots: chart key → series metric. */
const METRICS = {
  instance: { trend: 'total_size_mb', change: 'total_size_change_mb', 'change-percent': 'total_size_change_percent' },
  database: { trend: 'avg_size_mb', change: 'size_change_mb', 'change-percent': 'size_change_percent' },
};

const CHART_DEFAULTS = { kind: 'line', top: '10', periods: '14' };
const CHART_CONTROLS = Object.keys(CHART_DEFAULTS);
const POLL_MILLISECONDS = 1000;

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
  let refreshNumber = 0;

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
    await loadInstanceOptions(query.getAll('instance_id'));
    await loadDatabaseOptions(query.get('database_name') || '');
  }

  function setCard(key, value, detail = '') {
    const card = document.querySelector(`[data-card="${key}"]`);
    if (!card) return;
    card.querySelector('.value').textContent = value;
    card.querySelector('.detail').textContent = detail;
  }

  async function refreshSummary(number) {
    showState(summaryState, 'Loading the summary…', 'loading');
    try {
      const { summary } = await api(`/capacity/${level}s/summary`, { query: filterQuery() });
      if (number !== refreshNumber) return;
      const span = `${summary.window.start_date} – ${summary.window.end_date}`;
      const largest = summary.largest
        ? `${summary.largest.instance_name}${summary.largest.database_name ? ` / ${summary.largest.database_name}` : ''}`
        : null;
      if (level === 'instance') {
        setCard('instance_count', formatCount(summary.total_instances), `with samples in ${span}`);
        setCard('total_size', formatGib(summary.total_size_mb), largest ? `largest: ${largest} (${formatGib(summary.largest.size_mb)})` : '');
        setCard('database_count', formatCount(summary.total_databases), 'in the latest sample of each instance');
        setCard('growth', formatGibChange(summary.growth_mb), `${formatPercent(summary.growth_rate)} in ${span}`);
      } else {
        setCard('database_count', formatCount(summary.total_databases), `on ${formatCount(summary.total_instances)} ${summary.total_instances === 1 ? 'instance' : 'instances'}`);
        setCard('total_size', formatGib(summary.total_size_mb), `latest ${summary.period_type} period of each database`);
        setCard('growth', formatGibChange(summary.size_change_mb), `${formatPercent(summary.growth_rate)} in ${span}`);
        setCard('largest', largest ?? '—', largest ? formatGib(summary.largest.size_mb) : 'no data');
      }
      const empty = level === 'instance' ? summary.total_instances === 0 : summary.total_databases === 0;
      showState(summaryState, empty ? 'No samples match these filters in the window.' : '', empty ? 'empty' : '');
    } catch (error) {
      if (number !== refreshNumber) return;
      for (const card of document.querySelectorAll('[data-card]')) setCard(card.dataset.card, '—');
      showState(summaryState, describeError(error), 'error');
    }
  }

  async function refreshChart(section, number) {
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
    section.dataset.state = 'loading';
    showState(state, 'Loading…', 'loading');
    try {
      const series = await api(`/capacity/${level}s/series`, { query });
      if (number !== refreshNumber) return;
      section.dataset.source = source;
      if (series.series.length === 0) {
        chartOn(canvas)?.destroy();
        box.hidden = true;
        showState(state, 'No data for these filters in this window.', 'empty');
        section.dataset.state = 'empty';
        return;
      }
      box.hidden = false;
      // Kept on the section for the browser tests (and for a look from the console).
      section.chart = drawChart(canvas, control('kind'), series, level);
      showState(
        state,
        series.truncated ? `Showing the ${series.series.length} largest of ${series.total_series} (by their latest value).` : '',
      );
      section.dataset.state = 'ready';
    } catch (error) {
      if (number !== refreshNumber) return;
      chartOn(canvas)?.destroy();
      box.hidden = true;
      showState(state, describeError(error), 'error');
      section.dataset.state = 'error';
    }
  }

  async function refresh() {
    refreshNumber += 1;
    const number = refreshNumber;
    await Promise.all([refreshSummary(number), ...charts.map((section) => refreshChart(section, number))]);
  }

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
    await loadInstanceOptions([]);
    await loadDatabaseOptions('');
    writeUrl(false);
    refresh();
  });
  for (const section of charts) {
    for (const control of CHART_CONTROLS) {
      section.querySelector(`[id$="-${control}"]`).addEventListener('change', () => {
        writeUrl(true);
        refreshNumber += 1;
        refreshChart(section, refreshNumber);
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
