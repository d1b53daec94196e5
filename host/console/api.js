// The console's one way to the API: same origin only (every path starts with `/`), the key
// from sessionStorage in the Authorization header, never in a URL, a cookie or a log.

const KEY = "switchboard.key";
const TENANT = "switchboard.tenant";

/** An error answer of the API, or a failure to reach it. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The error in plain words, for a person. */
  get plain() {
    switch (true) {
      case this.status === 0:
        return `The server could not be reached (${this.message}). Check that it is running, then try again.`;
      case this.status === 401:
        return "That key was not accepted: it is unknown or has been revoked. Sign in with a valid key.";
      case this.status === 403:
        return `Your key's role may not do this. ${this.message}`;
      case this.status === 404:
        return `Not found: ${this.message}. With a key of another tenant, a tenant's resources are not found either.`;
      case this.status === 409:
        return `Not now: ${this.message}`;
      case this.status === 413:
        return `Too large: ${this.message}`;
      case this.status >= 400 && this.status < 500:
        return `The request was refused: ${this.message}`;
      default:
        return `The server failed to answer (${this.status}). Try again; if it keeps failing, its log says why.`;
    }
  }
}

/** The signed-in session, or null. */
export function session() {
  const key = sessionStorage.getItem(KEY);
  const tenant = sessionStorage.getItem(TENANT);
  return key && tenant ? { key, tenant } : null;
}

/** Keeps the session for this tab only. */
export function keep(tenant, key) {
  sessionStorage.setItem(TENANT, tenant);
  sessionStorage.setItem(KEY, key);
}

/** Forgets the session. */
export function forget() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(TENANT);
}

/** `/v1/tenants/{tenant}` + `rest`, each part escaped. */
export function tenantPath(tenant, rest = "") {
  return `/v1/tenants/${encodeURIComponent(tenant)}${rest}`;
}

/** The query string of `params`, leaving out empty ones. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

/**
 * Calls the API. `body` is JSON unless it is a Blob or ArrayBuffer (sent as `type`);
 * `accept` other than JSON answers the raw Response. Throws ApiError.
 */
export async function call(method, path, { key, body, type, accept = "application/json" } = {}) {
  if (!path.startsWith("/") || path.startsWith("//")) throw new Error("the console only calls its own origin");
  const headers = { Accept: accept };
  if (key) headers.Authorization = `Bearer ${key}`;
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers["Content-Type"] = type || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: "omit",
      redirect: "error",
      referrerPolicy: "no-referrer",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", e.message);
  }
  if (!response.ok) {
    let code = "error";
    let message = response.statusText;
    try {
      const answer = await response.json();
      code = answer.error.code;
      message = answer.error.message;
    } catch {
      // Not the API's error body (a proxy's page, say): the status says enough.
    }
    throw new ApiError(response.status, code, message);
  }
  if (accept !== "application/json") return response;
  return response.status === 204 ? null : response.json();
}
