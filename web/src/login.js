// The login page: signs in through the API and goes on to the page that sent the visitor.

import { api, ApiFailure } from './api.js';

export function startLoginPage() {
  const form = document.getElementById('login-form');
  const error = document.getElementById('login-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      error.textContent = 'Enter your username and password.';
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await api('/auth/login', { method: 'POST', body: { username, password } });
      // The server checked `next` to be a path on this site when it rendered the page.
      window.location.assign(document.getElementById('login-next').value || '/');
    } catch (failure) {
      error.textContent = failure instanceof ApiFailure ? failure.message : String(failure);
      form.elements.password.select();
    } finally {
      button.disabled = false;
    }
  });
}
