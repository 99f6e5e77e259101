// The HTTP API client. The bearer token lives in this module's memory only: never in
// localStorage or a cookie, so no other page, extension storage dump or CSRF can use it, and
// it is gone when the tab closes (a reload asks to log in again).

export const session = { token: null, user: null };

const endedListeners = new Set();

export function onSessionEnded(fn) {
  endedListeners.add(fn);
  return () => endedListeners.delete(fn);
}

export function endSession(message) {
  if (!session.token) return;
  session.token = null;
  session.user = null;
  for (const fn of endedListeners) fn(message);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error.code ?? "http_error";
    this.details = error.details ?? null;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, {
      error: { code: "network", message: "The server could not be reached; try again." },
    });
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && path !== "/api/auth/login") {
      endSession("Your session has ended. Please log in again.");
    }
    throw error;
  }
  return data;
}
