// Calls to the JSON API (/api/v1): the envelope unwrapped, the CSRF token sent with writes,
// failures turned into ApiFailure carrying the envelope's message and per-field errors.

/** A failed call: `message` is the envelope's, `fields` its `errors[]`. */
export class ApiFailure extends Error {
  constructor(status, envelope) {
    super(envelope?.message || `The server answered with status ${status}.`);
    this.status = status;
    this.code = envelope?.message_code;
    this.fields = envelope?.errors || [];
  }

  /** The message and each field's reason, for showing to a person. */
  describe() {
    const details = this.fields.map((field) => `${field.field}: ${field.message}`);
    // The page's CSRF token is stale when the session was renewed elsewhere (a login in
    // another tab); a reload fetches the current one.
    const advice = this.code?.startsWith('CSRF_') ? ['reload the page and try again'] : [];
    return [this.message, ...details, ...advice].join(' — ');
  }
}

/** What to tell a person about any failure: an API failure's description, else its text. */
export function describeError(error) {
  return error instanceof ApiFailure ? error.describe() : String(error);
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content;
}

let leaving = false;

/**
 * Sends the browser to the login page, to come back here afterwards. Once only: a page's
 * parallel requests all fail when the session ends, and each new navigation would abort the
 * one before.
 */
export function goToLogin() {
  if (leaving) return;
  leaving = true;
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/**
 * Calls `path` (relative to /api/v1) and returns the envelope's `data`.
 * @param {string} path
 * @param {{method?: string, body?: unknown, query?: URLSearchParams}} options
 */
export async function api(path, { method = 'GET', body, query } = {}) {
  const search = query?.toString();
  const url = `/api/v1${path}${search ? `?${search}` : ''}`;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') {
    const token = csrfToken();
    if (token) headers['X-CSRFToken'] = token;
  }
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure(0, { message: 'The server could not be reached; check the connection and try again.' });
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): reported by status below.
  }
  if (response.status === 401 && path !== '/auth/login') {
    goToLogin();
  }
  if (!response.ok || !envelope || envelope.success === false) {
    throw new ApiFailure(response.status, envelope);
  }
  return envelope.data;
}
