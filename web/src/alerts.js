// The alerts page: events with their notifications' delivery (attempts, last error), and for
// admins the rules, edited or deleted in place, and a form that adds or replaces one (each
// problem shown next to its field).

import { api, ApiFailure, describeError } from './api.js';
import { element, showState, statusBadge } from './dom.js';
import { formatTime } from './format.js';

/** The words of a comma-separated list. */
function listOf(text) {
  return text
    .split(',')
    .map((word) => word.trim())
    .filter((word) => word.length > 0);
}

function conditionText(condition) {
  const [comparison, threshold] = condition.above !== undefined ? ['>', condition.above] : ['<', condition.below];
  const window = condition.metric === 'growth_percent' ? ` over ${condition.periods} ${condition.period_type} periods` : '';
  return `${condition.metric} ${comparison} ${threshold}${window}`;
}

function scopeText(scope) {
  const parts = [];
  if (scope.db_types.length) parts.push(`engines ${scope.db_types.join(', ')}`);
  if (scope.instance_ids.length) parts.push(`instances ${scope.instance_ids.join(', ')}`);
  if (scope.database_names.length) parts.push(`databases ${scope.database_names.join(', ')}`);
  return parts.length ? parts.join('; ') : 'all';
}

function notificationsCell(notifications) {
  if (!notifications.length) return element('td', {}, '-');
  return element(
    'td',
    {},
    element(
      'ul',
      { class: 'plain' },
      notifications.map((notification) =>
        element(
          'li',
          {},
          `${notification.event_state} → ${notification.channel_kind}: `,
          statusBadge(notification.status),
          ` ${notification.attempts} attempt${notification.attempts === 1 ? '' : 's'}`,
          notification.last_error ? element('small', { class: 'detail' }, ` last error: ${notification.last_error}`) : null,
        ),
      ),
    ),
  );
}

export function startAlertsPage() {
  const state = document.getElementById('alerts-state');
  const eventsBody = document.querySelector('#events-table tbody');
  const filters = document.getElementById('event-filters');
  const admin = document.body.dataset.role === 'admin';

  async function loadEvents() {
    const query = new URLSearchParams({ limit: '200' });
    const eventState = document.getElementById('filter-event-state').value;
    const severity = document.getElementById('filter-event-severity').value;
    if (eventState) query.set('state', eventState);
    if (severity) query.set('severity', severity);
    const page = await api('/alerts/events', { query });
    eventsBody.replaceChildren(
      ...page.items.map((event) => {
        const instance = event.instance.name ?? `instance ${event.instance.id}`;
        const key = event.database_name ? `${event.database_name} on ${instance}` : instance;
        const period = event.period_start ? `${event.period_start} – ${event.period_end}` : '-';
        return element(
          'tr',
          { 'data-event': event.id },
          element('td', {}, statusBadge(event.state)),
          element('td', {}, `${event.rule.name} (${event.rule.severity})`),
          element('td', {}, key),
          element('td', {}, `${event.value}`),
          element('td', {}, period),
          element('td', {}, formatTime(event.first_seen_at)),
          element('td', {}, formatTime(event.last_seen_at)),
          notificationsCell(event.notifications),
        );
      }),
    );
    if (!page.items.length) {
      eventsBody.append(element('tr', {}, element('td', { colspan: 8 }, 'No alert events.')));
    }
  }

  async function loadRules() {
    const rules = await api('/alerts/rules');
    const body = document.querySelector('#rules-table tbody');
    body.replaceChildren(
      ...rules.map((rule) => {
        const remove = element('button', { type: 'button', class: 'secondary', 'data-action': 'delete-rule' }, 'Delete');
        remove.setAttribute('aria-label', `Delete rule ${rule.name}`);
        remove.addEventListener('click', async () => {
          if (!window.confirm(`Delete the rule “${rule.name}” with its events?`)) return;
          try {
            await api(`/alerts/rules/${rule.id}`, { method: 'DELETE' });
            showState(state, `Rule “${rule.name}” deleted.`);
            await Promise.all([loadRules(), loadEvents()]);
          } catch (error) {
            showState(state, describeError(error), 'error');
          }
        });
        const edit = element('button', { type: 'button', class: 'secondary', 'data-action': 'edit-rule' }, 'Edit');
        edit.setAttribute('aria-label', `Edit rule ${rule.name}`);
        if (rule.channels.length > 1) {
          // The form holds one channel; replacing this rule there would drop the others.
          edit.disabled = true;
          edit.title = `${rule.channels.length} channels: replace it through the API or the command line`;
        }
        edit.addEventListener('click', () => editRule(rule));
        return element(
          'tr',
          { 'data-rule': rule.id },
          element('td', {}, rule.name),
          element('td', {}, rule.level),
          element('td', {}, conditionText(rule.condition)),
          element('td', {}, scopeText(rule.scope)),
          element('td', {}, rule.severity),
          element(
            'td',
            {},
            element(
              'ul',
              { class: 'plain' },
              rule.channels.map((channel) => element('li', {}, `${channel.kind} ${channel.target}${channel.has_secret ? ' (signed)' : ''}`)),
            ),
          ),
          element('td', {}, edit, ' ', remove),
        );
      }),
    );
    if (!rules.length) {
      body.append(element('tr', {}, element('td', { colspan: 7 }, 'No rules yet.')));
    }
  }

  // The form's controls by the fields the server names in its problems.
  const FIELDS = {
    name: 'rule-name',
    level: 'rule-level',
    'condition.metric': 'rule-metric',
    'condition.above': 'rule-threshold',
    'condition.below': 'rule-threshold',
    'condition.period_type': 'rule-period-type',
    'condition.periods': 'rule-periods',
    'scope.db_types': 'rule-db-types',
    'scope.instance_ids': 'rule-instance-ids',
    'scope.database_names': 'rule-database-names',
    severity: 'rule-severity',
    channels: 'rule-channel-target',
    'channels[0].kind': 'rule-channel-kind',
    'channels[0].url': 'rule-channel-target',
    'channels[0].to': 'rule-channel-target',
    'channels[0].secret': 'rule-channel-secret',
  };

  function controlOf(field) {
    const exact = FIELDS[field] ?? FIELDS[field.replace(/\[\d+\]$/, '')];
    return exact ? document.getElementById(exact) : null;
  }

  function clearProblems(form) {
    for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
    for (const error of form.querySelectorAll('.error')) error.textContent = '';
  }

  function ruleBody() {
    const value = (id) => document.getElementById(id).value.trim();
    const condition = { metric: value('rule-metric') };
    const threshold = value('rule-threshold');
    if (threshold !== '') condition[value('rule-comparison')] = Number(threshold);
    if (value('rule-period-type')) condition.period_type = value('rule-period-type');
    if (value('rule-periods')) condition.periods = Number(value('rule-periods'));
    const ids = listOf(value('rule-instance-ids')).map(Number);
    const kind = value('rule-channel-kind');
    const channel = { kind };
    const target = value('rule-channel-target');
    if (target) channel[kind === 'email' ? 'to' : 'url'] = target;
    const secret = document.getElementById('rule-channel-secret').value;
    if (secret) channel.secret = secret;
    return {
      name: value('rule-name'),
      level: value('rule-level'),
      condition,
      scope: {
        db_types: listOf(value('rule-db-types')),
        instance_ids: ids,
        database_names: listOf(value('rule-database-names')),
      },
      severity: value('rule-severity'),
      channels: [channel],
    };
  }

  // The rule being replaced, while the form edits one.
  let editing = null;

  function setEditing(rule) {
    editing = rule;
    document.getElementById('rule-submit').textContent = rule ? 'Replace rule' : 'Add rule';
    document.getElementById('rule-cancel-edit').hidden = !rule;
    document.getElementById('add-rule-title').textContent = rule ? `Edit the rule “${rule.name}”` : 'Add a rule';
  }

  /** Fills the form with `rule`; its URL and secret are never shown, so they are asked again. */
  function editRule(rule) {
    const form = document.getElementById('rule-form');
    form.reset();
    clearProblems(form);
    const set = (id, value) => {
      document.getElementById(id).value = value ?? '';
    };
    const condition = rule.condition;
    const above = condition.above !== undefined && condition.above !== null;
    set('rule-name', rule.name);
    set('rule-level', rule.level);
    set('rule-metric', condition.metric);
    set('rule-comparison', above ? 'above' : 'below');
    set('rule-threshold', String(above ? condition.above : condition.below));
    set('rule-period-type', condition.period_type);
    set('rule-periods', String(condition.periods));
    set('rule-db-types', rule.scope.db_types.join(', '));
    set('rule-instance-ids', rule.scope.instance_ids.join(', '));
    set('rule-database-names', rule.scope.database_names.join(', '));
    set('rule-severity', rule.severity);
    const channel = rule.channels[0];
    set('rule-channel-kind', channel.kind);
    const target = document.getElementById('rule-channel-target');
    target.placeholder = `enter again: ${channel.target}`;
    document.getElementById('rule-channel-secret').placeholder = channel.has_secret ? 'enter again' : '';
    setEditing(rule);
    document.getElementById('rule-name').focus();
  }

  function startRuleForm() {
    const form = document.getElementById('rule-form');
    const general = document.getElementById('rule-form-error');
    document.getElementById('rule-cancel-edit').addEventListener('click', () => {
      form.reset();
      clearProblems(form);
      document.getElementById('rule-channel-target').placeholder = '';
      document.getElementById('rule-channel-secret').placeholder = '';
      setEditing(null);
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearProblems(form);
      // A replacement names the channel in full: a stored secret, never shown, would be
      // dropped by an empty field, and the receiver would refuse what is no longer signed.
      const secret = document.getElementById('rule-channel-secret');
      if (editing?.channels[0]?.has_secret && !secret.value) {
        secret.setAttribute('aria-invalid', 'true');
        document.getElementById('rule-channel-secret-error').textContent =
          'the stored secret is not shown: enter it again (to remove it, replace the rule through the API)';
        secret.focus();
        return;
      }
      try {
        const replacing = editing;
        const rule = replacing
          ? await api(`/alerts/rules/${replacing.id}`, { method: 'PUT', body: ruleBody() })
          : await api('/alerts/rules', { method: 'POST', body: ruleBody() });
        form.reset();
        document.getElementById('rule-channel-target').placeholder = '';
        document.getElementById('rule-channel-secret').placeholder = '';
        setEditing(null);
        showState(
          state,
          replacing
            ? `Rule “${rule.name}” replaced; its open events are judged by it after the next aggregation run.`
            : `Rule “${rule.name}” added; it is evaluated after the next aggregation run.`,
        );
        await loadRules();
      } catch (failure) {
        const problems = failure instanceof ApiFailure ? failure.fields : [];
        const unplaced = [];
        let focused = false;
        for (const problem of problems) {
          const control = controlOf(problem.field);
          if (!control) {
            unplaced.push(`${problem.field}: ${problem.message}`);
            continue;
          }
          control.setAttribute('aria-invalid', 'true');
          const error = document.getElementById(`${control.id}-error`);
          if (error) error.textContent = [error.textContent, problem.message].filter(Boolean).join('; ');
          else unplaced.push(`${problem.field}: ${problem.message}`);
          if (!focused) control.focus();
          focused = true;
        }
        if (!problems.length) unplaced.push(describeError(failure));
        general.textContent = unplaced.join(' — ');
      }
    });
  }

  filters.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await loadEvents();
    } catch (error) {
      showState(state, describeError(error), 'error');
    }
  });

  const loads = [loadEvents()];
  if (admin) {
    loads.push(loadRules());
    startRuleForm();
  }
  Promise.all(loads).catch((error) => showState(state, describeError(error), 'error'));
}
