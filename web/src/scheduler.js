// The scheduler page: every schedule with its cron, next and last run and state; admins
// pause, resume, run now and edit the cron expression (checked by the server, its reasons
// shown next to the field).

import { api, ApiFailure, describeError } from './api.js';
import { element, showState, statusBadge } from './dom.js';
import { formatTime } from './format.js';

export function startSchedulerPage() {
  const table = document.getElementById('schedules-table');
  const body = table.querySelector('tbody');
  const state = document.getElementById('scheduler-state');
  // The server renders the role, and the Actions column only for admins.
  const admin = document.body.dataset.role === 'admin';

  async function act(schedule, action) {
    try {
      const result = await api(`/scheduler/jobs/${encodeURIComponent(schedule.id)}/actions/${action}`, { method: 'POST' });
      if (action === 'run' && result?.session_id) {
        state.dataset.kind = '';
        state.hidden = false;
        state.replaceChildren(
          `${schedule.job_name} queued: `,
          element('a', { href: `/sync-sessions/${result.session_id}` }, `session ${result.session_id}`),
        );
      } else {
        showState(state, `${schedule.job_name}: ${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'queued'}.`);
      }
      await load();
    } catch (error) {
      showState(state, describeError(error), 'error');
    }
  }

  function cronCell(schedule) {
    if (!admin) {
      return element('td', {}, element('code', {}, schedule.cron_expression), element('br'), element('small', {}, schedule.time_zone));
    }
    const inputId = `cron-${schedule.id}`;
    const errorId = `cron-${schedule.id}-error`;
    const input = element('input', {
      id: inputId,
      name: 'cron_expression',
      value: schedule.cron_expression,
      required: true,
      spellcheck: 'false',
      'aria-describedby': errorId,
    });
    const error = element('p', { class: 'error', id: errorId, role: 'alert' });
    const form = element(
      'form',
      { class: 'cron-form' },
      element('label', { for: inputId, class: 'visually-hidden' }, `Cron expression of ${schedule.job_name}`),
      input,
      element('button', { type: 'submit', class: 'secondary' }, 'Save'),
      element('small', {}, schedule.time_zone),
      error,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      input.removeAttribute('aria-invalid');
      try {
        await api(`/scheduler/jobs/${encodeURIComponent(schedule.id)}`, {
          method: 'PUT',
          body: { cron_expression: input.value },
        });
        showState(state, `${schedule.job_name}: cron set to ${input.value}.`);
        await load();
      } catch (failure) {
        input.setAttribute('aria-invalid', 'true');
        error.textContent =
          failure instanceof ApiFailure && failure.fields.length
            ? failure.fields.map((field) => field.message).join('; ')
            : describeError(failure);
        input.focus();
      }
    });
    return element('td', {}, form);
  }

  function row(schedule) {
    const last = schedule.last_run_at
      ? [
          formatTime(schedule.last_run_at),
          schedule.last_session_id ? element('br') : null,
          schedule.last_session_id
            ? element('a', { href: `/sync-sessions/${schedule.last_session_id}` }, `session ${schedule.last_session_id}`)
            : null,
          schedule.last_session_status ? [' ', statusBadge(schedule.last_session_status)] : null,
        ]
      : ['never'];
    const cells = [
      element('th', { scope: 'row' }, element('strong', {}, schedule.job_name), element('br'), element('small', {}, schedule.description)),
      cronCell(schedule),
      element('td', {}, schedule.is_paused ? '— (paused)' : formatTime(schedule.next_run_at)),
      element('td', {}, ...last),
      element('td', {}, element('span', { class: `badge ${schedule.is_paused ? 'status-paused' : 'status-active'}` }, schedule.is_paused ? 'paused' : 'active')),
    ];
    if (admin) {
      const toggle = schedule.is_paused ? 'resume' : 'pause';
      const toggleButton = element('button', { type: 'button', class: 'secondary', 'data-action': toggle }, schedule.is_paused ? 'Resume' : 'Pause');
      const runButton = element('button', { type: 'button', 'data-action': 'run' }, 'Run now');
      toggleButton.addEventListener('click', () => act(schedule, toggle));
      runButton.addEventListener('click', () => act(schedule, 'run'));
      cells.push(element('td', { class: 'row-actions' }, toggleButton, runButton));
    }
    return element('tr', { 'data-schedule': schedule.id }, ...cells);
  }

  async function load() {
    try {
      const schedules = await api('/scheduler/jobs');
      body.replaceChildren(...schedules.map(row));
      if (schedules.length === 0) showState(state, 'No schedules.', 'empty');
    } catch (error) {
      showState(state, describeError(error), 'error');
    }
  }

  load();
}
