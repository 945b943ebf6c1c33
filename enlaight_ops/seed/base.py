"""What every seed step shares: the stack it seeds, commands inside its containers, HTTP from inside n8n."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..compose import Compose, ContainerState
from ..envfile import parse_env
from ..runner import Result, run
from ..settings import StackSettings
from .report import SeedError, StepReport

Log = Callable[[str], object]
EXEC_TIMEOUT = 600  # seconds: n8n's CLI boots its whole app for every command (several seconds each)


def stack_env(settings: StackSettings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values Compose interpolates: the env files in order (later wins), then the process environment."""
    values: dict[str, str] = {}
    for path in settings.env_files:
        if path.is_file():
            values.update(parse_env(path.read_text()))
    values.update(os.environ if environ is None else environ)
    return values


def service_problem(states: Sequence[ContainerState], service: str) -> str | None:
    """Why `service` cannot be seeded now (not running, unhealthy, still starting), or None when it can."""
    mine = [s for s in states if s.service == service]
    if not mine:
        return f"service {service} is not running (start it: invoke start -s {service})"
    running = [s for s in mine if s.state == "running"]
    if not running:
        return f"service {service} is {mine[0].state}, not running (invoke start -s {service})"
    if all(s.health == "starting" for s in running):
        return f"service {service} is still starting (invoke wait -s {service})"
    if all(s.health == "unhealthy" for s in running):
        return f"service {service} is unhealthy (invoke logs -s {service})"
    return None


def _seed_error(message: str, _exit_code: int) -> SeedError:
    return SeedError(message)


@dataclass
class SeedContext:
    compose: Compose
    env: dict[str, str]
    states: list[ContainerState]
    strict: bool = False
    log: Log = print
    warnings: list[str] = field(default_factory=list)

    @property
    def root(self):
        return self.compose.settings.root

    def problem(self, service: str) -> str | None:
        return service_problem(self.states, service)

    def exec(
        self,
        service: str,
        *argv: str,
        input_text: str | None = None,
        env_names: Sequence[str] = (),
        check: bool = True,
        what: str | None = None,
    ) -> Result:
        """`docker compose exec -T SERVICE ARGV`, output captured; `input_text` goes to its stdin.

        `env_names` are passed as `-e NAME` without a value: Compose takes the value from the stack's env files or
        the environment, so secrets never appear on a command line.
        """
        env_flags = [flag for name in env_names for flag in ("-e", name)]
        full = self.compose.argv("exec", "-T", *env_flags, service, *argv)
        return run(full, input=input_text or "", timeout=EXEC_TIMEOUT, check=check, mask=self.compose.mask,
                   what=f"{what or ' '.join(argv[:3])} in {service}", error=_seed_error)  # fmt: skip


# Runs inside the n8n container (its image always has node): one HTTP request read as JSON from stdin, so header
# values (the knowledge-base key) stay off the command line. Prints {"status", "body"}; status 0 = no connection.
_HTTP_SCRIPT = """
let raw = '';
process.stdin.on('data', (d) => (raw += d)).on('end', async () => {
  const r = JSON.parse(raw);
  try {
    const res = await fetch(r.url, { method: r.method, headers: r.headers,
      body: r.body === undefined ? undefined : JSON.stringify(r.body), signal: AbortSignal.timeout(r.timeout) });
    const cookie = res.headers.get('set-cookie');
    process.stdout.write(JSON.stringify({ status: res.status, body: await res.text(), cookie }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ status: 0, body: String(e && e.cause ? e.cause : e) }));
  }
});
"""


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str
    cookie: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise SeedError(f"expected JSON, got HTTP {self.status}: {self.body[:200]}") from exc


def http_in_container(
    ctx: SeedContext,
    service: str,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout: float = 30,
) -> HttpResult:
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "headers": {"content-type": "application/json", **(headers or {})},
        "timeout": int(timeout * 1000),
    }
    if body is not None:
        request["body"] = body
    result = ctx.exec(service, "node", "-e", _HTTP_SCRIPT, input_text=json.dumps(request), what=f"{method} {url}")
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise SeedError(f"{method} {url} from {service}: unreadable answer {result.stdout[:200]!r}") from exc
    return HttpResult(int(answer.get("status", 0)), str(answer.get("body", "")), answer.get("cookie"))


class Step(Protocol):
    name: str
    services: tuple[str, ...]  # must run for the step to run at all

    def run(self, ctx: SeedContext, *, reset: bool) -> StepReport: ...
