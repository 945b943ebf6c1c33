import { useCallback, useEffect, useState } from 'react';
import { getJson } from './api';
import { normalizeProjects, summarizeHealth, type HealthView, type Project } from './format';

type Load<T> =
  | { kind: 'loading' }
  | { kind: 'error'; message: string }
  | { kind: 'done'; data: T };

const REFRESH_MS = 15_000;

function HealthPanel({ state }: { state: Load<HealthView> }) {
  if (state.kind === 'loading') return <p className="muted">Checking backend…</p>;
  if (state.kind === 'error') return <p className="bad">{state.message}</p>;
  const h = state.data;
  return (
    <>
      <p className={`badge badge-${h.overall}`} data-testid="health-summary">
        {h.summary}
      </p>
      {h.checks.length > 0 && (
        <table className="checks">
          <thead>
            <tr>
              <th>Check</th>
              <th>State</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {h.checks.map((c) => (
              <tr key={c.name}>
                <td>{c.name}</td>
                <td className={c.state === 'ok' ? 'good' : c.state === 'fail' ? 'bad' : 'muted'}>{c.state}</td>
                <td>{c.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function ProjectList({ state }: { state: Load<Project[]> }) {
  if (state.kind === 'loading') return <p className="muted">Loading projects…</p>;
  if (state.kind === 'error') return <p className="bad">{state.message}</p>;
  if (state.data.length === 0) return <p className="muted">No projects yet.</p>;
  return (
    <ul className="projects">
      {state.data.map((p) => (
        <li key={p.id}>
          <strong>{p.name}</strong>
          {p.client && <span className="muted"> — {p.client}</span>}
          <div className="small">
            Agents: {p.agents.length ? p.agents.join(', ') : '—'}
            <br />
            Knowledge bases: {p.knowledgeBases.length ? p.knowledgeBases.join(', ') : '—'}
          </div>
        </li>
      ))}
    </ul>
  );
}

export default function App() {
  const [health, setHealth] = useState<Load<HealthView>>({ kind: 'loading' });
  const [projects, setProjects] = useState<Load<Project[]>>({ kind: 'loading' });
  const [checkedAt, setCheckedAt] = useState<Date | null>(null);

  const refresh = useCallback(async (signal?: AbortSignal) => {
    const [h, p] = await Promise.all([
      getJson('/api/health/ready/', signal),
      getJson('/api/projects/', signal),
    ]);
    if (signal?.aborted) return;
    setHealth({ kind: 'done', data: summarizeHealth(h.status, h.body, h.error) });
    if (p.status !== null && p.status >= 200 && p.status < 300) {
      setProjects({ kind: 'done', data: normalizeProjects(p.body) });
    } else {
      setProjects({ kind: 'error', message: `Could not load projects: ${p.error ?? 'unknown error'}` });
    }
    setCheckedAt(new Date());
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    void refresh(controller.signal);
    const timer = window.setInterval(() => void refresh(controller.signal), REFRESH_MS);
    return () => {
      controller.abort();
      window.clearInterval(timer);
    };
  }, [refresh]);

  return (
    <main>
      <header>
        <h1>Enlaight status</h1>
        <button type="button" onClick={() => void refresh()}>
          Refresh
        </button>
      </header>
      <section>
        <h2>Backend readiness</h2>
        <HealthPanel state={health} />
      </section>
      <section>
        <h2>Projects</h2>
        <ProjectList state={projects} />
      </section>
      <footer className="muted small">
        {checkedAt ? `Last checked ${checkedAt.toLocaleTimeString()}` : 'Not checked yet'} · auto-refresh every{' '}
        {REFRESH_MS / 1000}s
      </footer>
    </main>
  );
}
