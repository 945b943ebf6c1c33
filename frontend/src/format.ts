// Pure helpers that turn loosely-shaped backend JSON into view models.
// The backend is developed in parallel, so everything here is tolerant of
// small shape differences and never throws on unexpected input.

export type CheckState = 'ok' | 'fail' | 'unknown';

export interface HealthCheck {
  name: string;
  state: CheckState;
  detail: string;
}

export type Overall = 'ok' | 'degraded' | 'down' | 'unreachable';

export interface HealthView {
  overall: Overall;
  httpStatus: number | null;
  summary: string;
  checks: HealthCheck[];
}

export interface Project {
  id: string;
  name: string;
  client: string;
  agents: string[];
  knowledgeBases: string[];
}

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const OK_WORDS = new Set(['ok', 'up', 'healthy', 'pass', 'passed', 'ready', 'true', 'success']);
const FAIL_WORDS = new Set([
  'fail', 'failed', 'failure', 'error', 'down', 'unhealthy', 'not ready', 'false', 'unavailable',
]);

function stateFromWord(word: string): CheckState {
  const w = word.trim().toLowerCase();
  if (OK_WORDS.has(w)) return 'ok';
  if (FAIL_WORDS.has(w)) return 'fail';
  return 'unknown';
}

/** Interpret a single check value: true, "ok", {"status": "ok"}, {"ok": false, "error": "..."}, ... */
export function interpretCheck(name: string, value: unknown): HealthCheck {
  if (typeof value === 'boolean') {
    return { name, state: value ? 'ok' : 'fail', detail: '' };
  }
  if (typeof value === 'string') {
    const state = stateFromWord(value);
    // An unrecognised string is most likely an error message.
    return { name, state: state === 'unknown' ? 'fail' : state, detail: state === 'unknown' ? value : '' };
  }
  if (isDict(value)) {
    let state: CheckState = 'unknown';
    if (typeof value.ok === 'boolean') state = value.ok ? 'ok' : 'fail';
    else if (typeof value.healthy === 'boolean') state = value.healthy ? 'ok' : 'fail';
    else if (typeof value.status === 'string') state = stateFromWord(value.status);
    else if (typeof value.status === 'boolean') state = value.status ? 'ok' : 'fail';
    const detailParts: string[] = [];
    for (const key of ['error', 'detail', 'message', 'reason']) {
      const v = value[key];
      if (typeof v === 'string' && v) detailParts.push(v);
    }
    const latency = value.latency_ms ?? value.elapsed_ms ?? value.duration_ms;
    if (typeof latency === 'number') detailParts.push(`${latency.toFixed(1)} ms`);
    if (state === 'unknown' && detailParts.length > 0 && (value.error || value.reason)) state = 'fail';
    return { name, state, detail: detailParts.join(' · ') };
  }
  return { name, state: 'unknown', detail: value == null ? '' : String(value) };
}

/** Pull the per-dependency checks out of a ready payload. */
export function extractChecks(body: unknown): HealthCheck[] {
  if (!isDict(body)) return [];
  const container = body.checks ?? body.services ?? body.dependencies ?? body.components;
  if (Array.isArray(container)) {
    return container
      .filter(isDict)
      .map((entry, i) => interpretCheck(String(entry.name ?? entry.service ?? `check ${i + 1}`), entry));
  }
  if (isDict(container)) {
    return Object.entries(container).map(([name, v]) => interpretCheck(name, v));
  }
  // Flat shape: {"status": "ok", "mysql": "ok", "redis": "ok"}
  const skip = new Set(['status', 'ok', 'detail', 'message', 'error', 'timestamp', 'time', 'version']);
  return Object.entries(body)
    .filter(([key]) => !skip.has(key))
    .map(([name, v]) => interpretCheck(name, v));
}

/**
 * Build the view model for GET /api/health/ready/.
 * httpStatus null means the request never got an HTTP response (network error).
 */
export function summarizeHealth(httpStatus: number | null, body: unknown, error?: string): HealthView {
  if (httpStatus === null) {
    return {
      overall: 'unreachable',
      httpStatus: null,
      summary: `Backend unreachable${error ? `: ${error}` : ''}`,
      checks: [],
    };
  }
  // Proxies (Vite dev server: 500, nginx: 502/504) answer with a non-JSON body
  // when the backend cannot be reached at all.
  if (body === null && [500, 502, 504].includes(httpStatus)) {
    return {
      overall: 'unreachable',
      httpStatus,
      summary: `Backend unreachable or failing (HTTP ${httpStatus}, no JSON body)`,
      checks: [],
    };
  }
  const checks = extractChecks(body);
  const failed = checks.filter((c) => c.state === 'fail');
  let overall: Overall;
  if (httpStatus >= 200 && httpStatus < 300 && failed.length === 0) overall = 'ok';
  else if (checks.length > 0 && failed.length < checks.length) overall = 'degraded';
  else overall = 'down';

  let summary: string;
  if (overall === 'ok') {
    summary = checks.length ? `Ready (${checks.length}/${checks.length} checks ok)` : 'Ready';
  } else if (httpStatus === 503) {
    summary = failed.length
      ? `Not ready (503): ${failed.map((c) => c.name).join(', ')} failing`
      : 'Not ready (503)';
  } else if (httpStatus >= 200 && httpStatus < 300) {
    summary = `Checks failing: ${failed.map((c) => c.name).join(', ')}`;
  } else {
    summary = `Unexpected HTTP ${httpStatus}${error ? `: ${error}` : ''}`;
  }
  return { overall, httpStatus, summary, checks };
}

function label(value: unknown): string {
  if (value == null) return '';
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  if (isDict(value)) {
    for (const key of ['name', 'title', 'label', 'slug', 'id']) {
      const v = value[key];
      if (typeof v === 'string' || typeof v === 'number') return String(v);
    }
  }
  return '';
}

function labels(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.map(label).filter((s) => s !== '');
}

/** Accepts {"results": [...]}, a bare list, or {"projects": [...]}/{"data": [...]}. */
export function normalizeProjects(body: unknown): Project[] {
  let list: unknown = body;
  if (isDict(body)) list = body.results ?? body.projects ?? body.data ?? body.items;
  if (!Array.isArray(list)) return [];
  return list.filter(isDict).map((p, i) => ({
    id: label(p.id ?? p.pk ?? p.uuid) || String(i + 1),
    name: label(p.name ?? p.title) || '(unnamed project)',
    client: label(p.client ?? p.client_name ?? p.customer),
    agents: labels(p.agents),
    knowledgeBases: labels(p.knowledge_bases ?? p.knowledgeBases ?? p.kbs),
  }));
}

/** Join a base URL (may be empty, may end with '/') and an absolute API path. */
export function apiUrl(path: string, base = ''): string {
  const cleanBase = base.replace(/\/+$/, '');
  const cleanPath = path.startsWith('/') ? path : `/${path}`;
  return `${cleanBase}${cleanPath}`;
}
