import { describe, expect, it } from 'vitest';
import { apiUrl, interpretCheck, normalizeProjects, summarizeHealth } from './format';

describe('summarizeHealth', () => {
  it('reports ready when all checks pass', () => {
    const view = summarizeHealth(200, { status: 'ok', checks: { mysql: 'ok', redis: { ok: true, latency_ms: 1.234 } } });
    expect(view.overall).toBe('ok');
    expect(view.summary).toBe('Ready (2/2 checks ok)');
    expect(view.checks).toEqual([
      { name: 'mysql', state: 'ok', detail: '' },
      { name: 'redis', state: 'ok', detail: '1.2 ms' },
    ]);
  });

  it('reports a 503 with the failing dependency', () => {
    const view = summarizeHealth(503, {
      status: 'error',
      checks: { mysql: 'ok', redis: { ok: false, error: 'Connection refused' } },
    });
    expect(view.overall).toBe('degraded');
    expect(view.summary).toBe('Not ready (503): redis failing');
    expect(view.checks[1]).toEqual({ name: 'redis', state: 'fail', detail: 'Connection refused' });
  });

  it('treats everything failing as down, and a non-JSON 503 as down', () => {
    expect(summarizeHealth(503, { checks: { mysql: false, redis: 'timeout' } }).overall).toBe('down');
    const bare = summarizeHealth(503, null, '503 Service Unavailable');
    expect(bare.overall).toBe('down');
    expect(bare.summary).toBe('Not ready (503)');
  });

  it('handles network errors', () => {
    const view = summarizeHealth(null, null, 'Failed to fetch');
    expect(view).toEqual({
      overall: 'unreachable',
      httpStatus: null,
      summary: 'Backend unreachable: Failed to fetch',
      checks: [],
    });
  });

  it('accepts flat and list shaped payloads', () => {
    expect(summarizeHealth(200, { status: 'ok', mysql: true, redis: 'up' }).checks.map((c) => c.name)).toEqual([
      'mysql',
      'redis',
    ]);
    const list = summarizeHealth(200, { checks: [{ name: 'mysql', status: 'ok' }] });
    expect(list.checks).toEqual([{ name: 'mysql', state: 'ok', detail: '' }]);
  });

  it('reports proxy errors and unexpected status codes', () => {
    const proxied = summarizeHealth(502, null, '502 Bad Gateway (non-JSON response)');
    expect(proxied.overall).toBe('unreachable');
    expect(proxied.summary).toBe('Backend unreachable or failing (HTTP 502, no JSON body)');
    expect(summarizeHealth(404, { detail: 'Not found.' }, '404 Not Found').summary).toBe(
      'Unexpected HTTP 404: 404 Not Found',
    );
  });
});

describe('interpretCheck', () => {
  it('treats unknown strings as error messages', () => {
    expect(interpretCheck('redis', 'Error 111 connecting')).toEqual({
      name: 'redis',
      state: 'fail',
      detail: 'Error 111 connecting',
    });
  });
});

describe('normalizeProjects', () => {
  it('reads the paginated DRF shape', () => {
    const projects = normalizeProjects({
      count: 1,
      results: [
        {
          id: 7,
          name: 'Alpha',
          client: { id: 1, name: 'ACME' },
          agents: [{ id: 1, name: 'Support bot' }, 'Sales bot'],
          knowledge_bases: [{ id: 3, title: 'Manuals' }],
        },
      ],
    });
    expect(projects).toEqual([
      { id: '7', name: 'Alpha', client: 'ACME', agents: ['Support bot', 'Sales bot'], knowledgeBases: ['Manuals'] },
    ]);
  });

  it('accepts a bare list and missing fields', () => {
    expect(normalizeProjects([{ name: 'Beta' }])).toEqual([
      { id: '1', name: 'Beta', client: '', agents: [], knowledgeBases: [] },
    ]);
    expect(normalizeProjects({ detail: 'nope' })).toEqual([]);
    expect(normalizeProjects('garbage')).toEqual([]);
  });
});

describe('apiUrl', () => {
  it('joins base and path', () => {
    expect(apiUrl('/api/projects/')).toBe('/api/projects/');
    expect(apiUrl('/api/projects/', 'http://localhost:8000/')).toBe('http://localhost:8000/api/projects/');
    expect(apiUrl('api/x', 'https://h/base')).toBe('https://h/base/api/x');
  });
});
