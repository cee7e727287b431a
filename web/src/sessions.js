// Run history (/sync-sessions) and one run (/sync-sessions/{id}): refreshed while runs are
// unfinished; admins may queue a backfill and cancel a queued or running run.

import { api, ApiFailure, describeError } from './api.js';
import { element, offerDownload, showState, statusBadge, UNFINISHED } from './dom.js';
import { formatDuration, formatTime, humanize } from './format.js';

const REFRESH_MILLISECONDS = 2000;
const FILTERS = { 'filter-status': 'status', 'filter-category': 'sync_category', 'filter-trigger': 'sync_type' };

function progressCell(session) {
  const progress = Number(session.progress_percentage);
  return element(
    'td',
    {},
    element('progress', { max: 100, value: progress, 'aria-label': `Session ${session.id} progress` }),
    ` ${progress.toFixed(0)} %`,
  );
}

export function startSessionsPage() {
  const form = document.getElementById('session-filters');
  const state = document.getElementById('sessions-state');
  const body = document.querySelector('#sessions-table tbody');
  const pager = document.getElementById('sessions-pager');
  const download = document.querySelector('[data-download]');
  let timer = null;

  function readUrl() {
    const query = new URLSearchParams(window.location.search);
    for (const [id, name] of Object.entries(FILTERS)) document.getElementById(id).value = query.get(name) || '';
    return Math.max(1, Number.parseInt(query.get('page') || '1', 10) || 1);
  }

  function query(page) {
    const query = new URLSearchParams();
    for (const [id, name] of Object.entries(FILTERS)) {
      const value = document.getElementById(id).value;
      if (value) query.set(name, value);
    }
    if (page > 1) query.set('page', String(page));
    return query;
  }

  async function load(page) {
    clearTimeout(timer);
    if (!body.children.length) showState(state, 'Loading…', 'loading');
    try {
      const result = await api('/sync-sessions', { query: query(page) });
      body.replaceChildren(
        ...result.items.map((session) =>
          element(
            'tr',
            { 'data-session-id': session.id },
            element('td', {}, element('a', { href: `/sync-sessions/${session.id}` }, `#${session.id}`)),
            element('td', {}, humanize(session.sync_category)),
            element('td', {}, session.sync_type === 'scheduled_task' ? 'Scheduled' : 'Manual', element('br'), element('small', {}, session.triggered_by)),
            element('td', {}, statusBadge(session.status)),
            element('td', {}, `${session.successful_instances} / ${session.failed_instances} / ${session.total_instances}`),
            progressCell(session),
            element('td', {}, formatTime(session.started_at ?? session.created_at)),
            element('td', {}, formatDuration(session.duration_seconds)),
          ),
        ),
      );
      showState(state, result.total === 0 ? 'No sessions match these filters.' : '', result.total === 0 ? 'empty' : '');
      // Every session of the filters, all pages: a CSV file is not paged.
      offerDownload(download, result.total === 0 ? null : `/api/v1/sync-sessions?${query(1)}`);
      pager.querySelector('.page-label').textContent = `Page ${result.page} of ${Math.max(result.pages, 1)} (${result.total} sessions)`;
      pager.querySelector('[data-page-step="-1"]').disabled = !result.has_prev;
      pager.querySelector('[data-page-step="1"]').disabled = !result.has_next;
      pager.dataset.page = result.page;
      if (result.items.some((session) => UNFINISHED.has(session.status))) {
        timer = setTimeout(() => load(page), REFRESH_MILLISECONDS);
      }
    } catch (error) {
      showState(state, describeError(error), 'error');
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    window.history.pushState(null, '', `?${query(1)}`);
    load(1);
  });
  document.getElementById('filter-reset').addEventListener('click', () => {
    for (const id of Object.keys(FILTERS)) document.getElementById(id).value = '';
    window.history.pushState(null, '', window.location.pathname);
    load(1);
  });
  for (const button of pager.querySelectorAll('[data-page-step]')) {
    button.addEventListener('click', () => {
      const page = Number(pager.dataset.page || 1) + Number(button.dataset.pageStep);
      window.history.pushState(null, '', `?${query(page)}`);
      load(page);
    });
  }
  window.addEventListener('popstate', () => load(readUrl()));
  startBackfill(() => load(1));
  load(readUrl());
}

/** The backfill form (rendered for admins only): queue, name the session, refresh the list. */
function startBackfill(reload) {
  const form = document.getElementById('backfill-form');
  if (!form) return;
  const status = document.getElementById('backfill-status');
  const submit = document.getElementById('backfill-submit');
  const inputs = { period_type: 'backfill-period', from: 'backfill-from', to: 'backfill-to', scope: 'backfill-scope' };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const id of Object.values(inputs)) document.getElementById(id).removeAttribute('aria-invalid');
    for (const id of ['backfill-from-error', 'backfill-to-error']) document.getElementById(id).textContent = '';
    const body = Object.fromEntries(Object.entries(inputs).map(([field, id]) => [field, document.getElementById(id).value]));
    submit.disabled = true;
    status.dataset.status = 'queueing';
    status.textContent = 'Queueing…';
    try {
      const started = await api('/capacity/aggregations/backfill', { method: 'POST', body });
      status.dataset.status = 'queued';
      status.replaceChildren(
        started.existing ? 'An equal backfill is already queued or running: ' : 'Backfill queued: ',
        element('a', { href: `/sync-sessions/${started.session_id}` }, `session ${started.session_id}`),
      );
      reload();
    } catch (failure) {
      status.dataset.status = 'error';
      const fields = failure instanceof ApiFailure ? failure.fields : [];
      const unplaced = [];
      for (const problem of fields) {
        const error = document.getElementById(`backfill-${problem.field}-error`);
        const input = document.getElementById(inputs[problem.field] || '');
        if (input) input.setAttribute('aria-invalid', 'true');
        if (error) error.textContent = problem.message;
        else unplaced.push(`${problem.field}: ${problem.message}`);
      }
      status.textContent = unplaced.length ? unplaced.join(' — ') : fields.length ? 'Check the highlighted fields.' : describeError(failure);
    } finally {
      submit.disabled = false;
    }
  });
}

export function startSessionPage() {
  const id = document.getElementById('session-title').dataset.sessionId;
  const state = document.getElementById('session-state');
  const summary = document.getElementById('session-summary');
  const body = document.querySelector('#records-table tbody');
  const cancel = document.getElementById('cancel-session');
  const download = document.querySelector('[data-download]');

  function term(name, ...values) {
    return [element('dt', {}, name), element('dd', {}, ...values)];
  }

  async function load() {
    try {
      const { session, records } = await api(`/sync-sessions/${id}`);
      summary.replaceChildren(
        ...term('Status', statusBadge(session.status)),
        ...term('Category', humanize(session.sync_category)),
        ...term('Trigger', `${session.sync_type === 'scheduled_task' ? 'Scheduled' : 'Manual'} (${session.triggered_by})`),
        ...term('Progress', ...progressCell(session).childNodes),
        ...term('Instances', `${session.successful_instances} succeeded, ${session.failed_instances} failed, ${session.cancelled_instances} cancelled of ${session.total_instances}`),
        ...term('Started', formatTime(session.started_at)),
        ...term('Finished', formatTime(session.completed_at)),
        ...term('Duration', formatDuration(session.duration_seconds)),
        ...term('Worker', session.worker_name ?? '—'),
        ...(session.error_message ? term('Error', element('span', { class: 'error' }, session.error_message)) : []),
      );
      body.replaceChildren(
        ...records.map((record) =>
          element(
            'tr',
            {},
            element('td', {}, record.instance_name),
            element('td', {}, statusBadge(record.status)),
            element('td', {}, String(record.items_synced)),
            element('td', {}, formatTime(record.started_at)),
            element('td', {}, formatTime(record.completed_at)),
            element('td', { class: record.error_message ? 'error' : '' }, record.error_message ?? ''),
          ),
        ),
      );
      offerDownload(download, records.length === 0 ? null : `/api/v1/sync-sessions/${id}`);
      const unfinished = UNFINISHED.has(session.status);
      showState(state, records.length === 0 ? 'No per-instance records yet.' : '', records.length === 0 ? 'empty' : '');
      if (cancel) cancel.hidden = !unfinished || Boolean(session.cancel_requested_at);
      if (unfinished) setTimeout(load, REFRESH_MILLISECONDS);
    } catch (error) {
      showState(state, describeError(error), 'error');
    }
  }

  cancel?.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api(`/sync-sessions/${id}/actions/cancel`, { method: 'POST' });
      showState(state, 'Cancellation requested; the run stops after the instance it is working on.');
    } catch (error) {
      showState(state, describeError(error), 'error');
    } finally {
      cancel.disabled = false;
    }
  });
  load();
}
