import { apiUrl } from './format';

const BASE: string = import.meta.env.VITE_API_BASE_URL ?? '';

export interface RawResponse {
  /** null when no HTTP response was received (network error, DNS, CORS, abort). */
  status: number | null;
  body: unknown;
  error?: string;
}

/** GET a JSON endpoint. Never throws: HTTP errors and network errors are returned. */
export async function getJson(path: string, signal?: AbortSignal): Promise<RawResponse> {
  let response: Response;
  try {
    response = await fetch(apiUrl(path, BASE), {
      headers: { Accept: 'application/json' },
      signal,
    });
  } catch (err) {
    return { status: null, body: null, error: err instanceof Error ? err.message : String(err) };
  }
  const text = await response.text().catch(() => '');
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const error = response.ok
    ? undefined
    : `${response.status} ${response.statusText}`.trim() + (body === null && text ? ' (non-JSON response)' : '');
  return { status: response.status, body, error };
}
