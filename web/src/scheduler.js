// The scheduler page: every schedule with its cron, next and last run and state; admins
// pause, resume, run now and edit the cron expression, time zone, misfire policy and catch-up
// limit in place (checked by the server, each reason shown next to its field).

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

  // The settings an admin edits in place, by their API field names.
  const MISFIRE_POLICIES = ['skip', 'run_once', 'catch_up'];

  function settingsCell(schedule) {
    if (!admin) {
      return element(
        'td',
        {},
        element('code', {}, schedule.cron_expression),
        element('br'),
        element('small', {}, `${schedule.time_zone} · misfire ${schedule.misfire_policy}`),
      );
    }
    const id = (field) => `${field}-${schedule.id}`;
    const field = (name, label, control) => {
      const error = element('p', { class: 'error', id: `${id(name)}-error`, role: 'alert' });
      control.id = id(name);
      control.name = name;
      control.setAttribute('aria-describedby', error.id);
      return {
        name,
        control,
        error,
        nodes: [element('label', { for: control.id, class: 'visually-hidden' }, `${label} of ${schedule.job_name}`), control],
      };
    };
    const policy = element('select', {}, ...MISFIRE_POLICIES.map((name) => element('option', { value: name }, name)));
    policy.value = schedule.misfire_policy;
    const fields = [
      field('cron_expression', 'Cron expression', element('input', { value: schedule.cron_expression, required: true, spellcheck: 'false', class: 'cron' })),
      field('timezone', 'Time zone', element('input', { value: schedule.time_zone, spellcheck: 'false', class: 'zone' })),
      field('misfire_policy', 'Misfire policy', policy),
      field('catch_up_limit', 'Catch-up limit', element('input', { type: 'number', value: String(schedule.catch_up_limit), class: 'limit' })),
    ];
    const original = {
      cron_expression: schedule.cron_expression,
      timezone: schedule.time_zone,
      misfire_policy: schedule.misfire_policy,
      catch_up_limit: String(schedule.catch_up_limit),
    };
    const general = element('p', { class: 'error', id: `${id('schedule')}-error`, role: 'alert' });
    const form = element(
      'form',
      { class: 'cron-form' },
      ...fields.flatMap((entry) => entry.nodes),
      element('button', { type: 'submit', class: 'secondary' }, 'Save'),
      ...fields.map((entry) => entry.error),
      general,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      for (const entry of fields) {
        entry.error.textContent = '';
        entry.control.removeAttribute('aria-invalid');
      }
      general.textContent = '';
      // Only what changed is sent: an unchanged zone sent back would restart the tick count.
      const changes = {};
      for (const entry of fields) {
        const value = entry.control.value.trim();
        if (value !== original[entry.name]) {
          changes[entry.name] = entry.name === 'catch_up_limit' ? Number(value) : value;
        }
      }
      if (Object.keys(changes).length === 0) {
        general.textContent = 'Nothing changed.';
        return;
      }
      try {
        await api(`/scheduler/jobs/${encodeURIComponent(schedule.id)}`, { method: 'PUT', body: changes });
        const said = Object.entries(changes).map(([name, value]) => `${name.replace(/_/g, ' ')} set to ${value}`);
        showState(state, `${schedule.job_name}: ${said.join(', ')}.`);
        await load();
      } catch (failure) {
        const problems = failure instanceof ApiFailure ? failure.fields : [];
        let shown = false;
        for (const problem of problems) {
          const entry = fields.find((candidate) => candidate.name === problem.field);
          if (entry) {
            entry.control.setAttribute('aria-invalid', 'true');
            entry.error.textContent = problem.message;
            if (!shown) entry.control.focus();
            shown = true;
          }
        }
        if (!shown) general.textContent = describeError(failure);
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
      settingsCell(schedule),
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
