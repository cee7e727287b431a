// The capstats web UI: runs the module of the page the server rendered (`data-page`).

import { startAlertsPage } from './alerts.js';
import { api } from './api.js';
import { startCapacityPage } from './capacity.js';
import { startLoginPage } from './login.js';
import { startSchedulerPage } from './scheduler.js';
import { startSessionPage, startSessionsPage } from './sessions.js';

const PAGES = {
  login: startLoginPage,
  'capacity-instances': () => startCapacityPage('instance'),
  'capacity-databases': () => startCapacityPage('database'),
  'sync-sessions': () => (document.getElementById('session-title') ? startSessionPage() : startSessionsPage()),
  scheduler: startSchedulerPage,
  alerts: startAlertsPage,
};

function startSignOut() {
  document.getElementById('sign-out')?.addEventListener('click', async () => {
    try {
      await api('/auth/logout', { method: 'POST' });
    } finally {
      window.location.assign('/login');
    }
  });
}

startSignOut();
PAGES[document.body.dataset.page]?.();
