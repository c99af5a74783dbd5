"""Shared plumbing of the benchmarks: a fresh database per run (``tests/support``,
which the tests share), Medic started with
`medic up` on free ports, the admin key, wrk, percentiles, the machine's load, and
the machine-limit scripts of ../shared/bench-limits (run in the same session).

Every benchmark is a report, not a gate: it prints figures and exits 0.
"""
from __future__ import annotations

import argparse
import contextlib

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.databases import (admin_connection, create_test_database, drop_test_database,  # noqa: E402
                                    migrated_database, with_database)
from tests.support.ports import free_port  # noqa: E402,F401 (the benchmarks' import of it)

# ../shared/bench-limits beside the checkout; a worktree may sit deeper (/work/wt/<name>).
LIMITS = Path(os.environ.get("MEDIC_BENCH_LIMITS") or next(
    (p / "shared" / "bench-limits" for p in REPO.parents if (p / "shared" / "bench-limits").is_dir()),
    REPO.parent / "shared" / "bench-limits"))
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# Rate limits high enough that the limiter is exercised on every request but refuses none.
GENEROUS_LIMIT = "1000000000"


def pct(sorted_values, p):
    """The p-th percentile (nearest rank) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def load1() -> float:
    return os.getloadavg()[0]


def command_line(doc: str, dsn_help: str = "PostgreSQL server (a fresh database is made on it)"
                 ) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as the help, and --dsn."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help=dsn_help)
    return parser


def wait_for_quiet(max_load: float = 1.5, max_wait: float = 180.0, quiet: bool = False) -> float:
    """Waits (up to ``max_wait`` s) until the 1-minute load is <= ``max_load``;
    returns the load at the start of the measurement (reported with every figure)."""
    deadline = time.monotonic() + max_wait
    while load1() > max_load and time.monotonic() < deadline:
        if not quiet:
            print(f"# load {load1():.2f} > {max_load}: waiting", file=sys.stderr, flush=True)
        time.sleep(15)
    return round(load1(), 2)


# --- databases ---------------------------------------------------------------------

def pg_version(server_dsn: str) -> str:
    conn = psycopg2.connect(server_dsn)
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    conn.close()
    return version


# --- Medic as processes ------------------------------------------------------------

@dataclass
class Medic:
    """A `medic up` started on free ports against a fresh database."""
    server_dsn: str = DEFAULT_DSN
    env_overrides: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    ports: dict[str, int] = field(default_factory=dict)
    admin_key: str = ""
    db_name: str = ""
    dsn: str = ""
    data_dir: str = ""

    def __enter__(self) -> "Medic":
        self.db_name = create_test_database(self.server_dsn, prefix="medic_bench_")
        self.dsn = with_database(self.server_dsn, self.db_name)
        self.data_dir = tempfile.mkdtemp(prefix="medic-bench-")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
        self.ports = {name: free_port() for name in ("gateway", "auth", "heartbeat", "routing", "delivery",
                                                      "remediation")}
        env.update({
            "MEDIC_DATABASE_URL": self.dsn, "MEDIC_DATA_DIR": self.data_dir, "MEDIC_LOG_LEVEL": "WARNING",
            "MEDIC_RATE_LIMIT_HEARTBEAT_PER_MINUTE": GENEROUS_LIMIT,
            "MEDIC_RATE_LIMIT_ANONYMOUS_HEARTBEAT_PER_MINUTE": GENEROUS_LIMIT,
            "MEDIC_RATE_LIMIT_MANAGEMENT_PER_MINUTE": GENEROUS_LIMIT,
            "MEDIC_RATE_LIMIT_CONSOLE_PER_MINUTE": GENEROUS_LIMIT,
        })
        for name, port in self.ports.items():
            env[f"MEDIC_{name.upper()}_PORT"] = str(port)
        for name in ("auth", "heartbeat", "routing", "delivery", "remediation", "monitor"):
            env[f"MEDIC_{name.upper()}_METRICS_PORT"] = str(free_port())
        env.update(self.env_overrides)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "medic_cli", "up", *self.args], env=env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        output = []
        for line in self.process.stdout:
            output.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        else:
            raise RuntimeError("medic up did not start:\n" + "".join(output[-40:]))
        # Keep draining the launcher's output so it never blocks on a full pipe
        # (into MEDIC_BENCH_LOG, when set, to read the services' logs afterwards).
        import threading
        sink = open(os.environ["MEDIC_BENCH_LOG"], "a") if os.environ.get("MEDIC_BENCH_LOG") else None
        threading.Thread(target=lambda: [sink and sink.write(line) for line in self.process.stdout],
                         daemon=True).start()
        self.admin_key = (Path(self.data_dir) / "admin.key").read_text().strip()

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.db_name:
            drop_test_database(self.server_dsn, self.db_name)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports['heartbeat']}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.admin_key}"),)

    def children(self) -> dict[str, int]:
        """pid of each `medic serve <name>` child (gateway, auth, heartbeat, ...)."""
        import psutil

        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if "serve" in cmd:
                name = cmd[cmd.index("serve") + 1]
                label, n = name, 2
                while label in found:
                    label, n = f"{name}-{n}", n + 1
                found[label] = child.pid
        return found


@contextlib.contextmanager
def bench_database(server_dsn: str, keep: str | None) -> Iterator[tuple[str, bool]]:
    """(database URL, whether its dataset is still to build). Without ``keep``: a
    fresh migrated database, dropped on exit. With it: the database of that name,
    made and migrated if missing and kept, so a dataset of a million rows is built
    once and measured again (``mark_built`` records a finished build)."""
    if keep is None:
        with migrated_database(server_dsn) as url:
            yield url, True
        return
    from medic import migrate

    conn = admin_connection(server_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (keep,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{keep}"')
    conn.close()
    url = with_database(server_dsn, keep)
    migrate.migrate(url)
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS public.bench_dataset (built_at timestamptz NOT NULL)")
        cur.execute("SELECT 1 FROM public.bench_dataset")
        built = cur.fetchone() is not None
    conn.close()
    if built:
        print(f"# reusing the dataset of database {keep}", file=sys.stderr, flush=True)
    yield url, not built


def mark_built(url: str) -> None:
    """Records that the dataset of a kept database (``bench_database``) is complete."""
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS public.bench_dataset (built_at timestamptz NOT NULL)")
        cur.execute("INSERT INTO public.bench_dataset VALUES (now())")
    conn.close()


def register_bulk(dsn: str, count: int, *, interval: int = 3600, prefix: str = "svc-",
                  deadline_offset_seconds: float | None = None, state: str = "up") -> None:
    """Inserts ``count`` services with one SQL statement (setup speed; names
    ``<prefix>00000``...). The deadline is now + interval unless given."""
    offset = interval if deadline_offset_seconds is None else deadline_offset_seconds
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    with conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, state,
                                     recent_beats, last_heartbeat_at, deadline_at)
               SELECT %s || lpad(n::text, greatest(5, length(n::text)), '0'), 'bench', %s, %s, ARRAY[now()], now(),
                      now() + make_interval(secs => %s)
               FROM generate_series(0, %s - 1) AS n""",
            (prefix, interval, state, offset, count))
    conn.close()


# --- wrk ---------------------------------------------------------------------------

# Each wrk thread starts half-way round the names from the previous one, so the
# threads do not send the same service at the same moment (real clients are
# distinct services; lock-step duplicates would only measure row-lock waits).
WRK_LUA = """
local threads = 0
function setup(thread)
  thread:set("counter", threads * math.floor(%(services)d / 2))
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local body = string.format('{"heartbeat_name": "svc-%%05d", "status": "UP"}', counter %% %(services)d)
  return wrk.format("POST", "/heartbeat", {["Content-Type"] = "application/json"%(auth)s}, body)
end
"""


def _to_ms(value: str, unit: str) -> float:
    v = float(value)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk_heartbeats(url: str, *, services: int, duration: float, connections: int = 32,
                   key: str | None = None, rate: int | None = None) -> dict:
    """wrk (or wrk2-style fixed rate is not available: ``rate`` is ignored by plain wrk)
    POSTing heartbeats for ``services`` names round-robin; req/s, p50, p99, non-2xx."""
    if not shutil.which("wrk"):
        return {"error": "wrk not installed (apt-get install wrk)"}
    auth = f', ["Authorization"] = "Bearer {key}"' if key else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA % {"services": services, "auth": auth})
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(duration)}s", "--latency",
                              "-s", script.name, url + "/heartbeat"],
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    try:
        result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
        for p in ("50", "99"):
            m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
            result[f"p{p}_ms"] = _to_ms(m.group(1), m.group(2))
    except AttributeError:
        return {"error": "could not parse wrk output: " + out[-500:]}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    result["socket_errors"] = errors.group(1).strip() if errors else ""
    return result


# --- machine limits (../shared/bench-limits) ---------------------------------------

# http_noop.py's http_apps module also defines a Flask app; Medic's venv has no
# Flask, and the uvicorn variant never uses it: an inert stand-in lets it import.
FLASK_STANDIN = """
class Flask:
    def __init__(self, *args, **kwargs):
        pass

    def post(self, *args, **kwargs):
        return lambda function: function


request = None
"""


def run_limit(script: str, *args: str, timeout: float = 900) -> dict:
    """Runs one bench-limits script; returns its summary lines keyed by their first
    word, e.g. {"sync": {"rps": 9313.0, ...}}, plus "raw" (the full output)."""
    path = LIMITS / script
    if not path.exists():
        return {"error": f"{path} not found"}
    env = dict(os.environ)
    standin = None
    try:
        import flask  # noqa: F401
    except ImportError:
        standin = tempfile.mkdtemp(prefix="bench-flask-standin-")
        Path(standin, "flask.py").write_text(FLASK_STANDIN)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [standin, env.get("PYTHONPATH")]))
    try:
        out = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                             cwd=LIMITS, timeout=timeout, env=env)
    finally:
        if standin:
            shutil.rmtree(standin, ignore_errors=True)
    figures: dict = {"raw": out.stdout}
    summary = out.stdout.split("# summary", 1)[-1].splitlines()[1:]
    for line in summary:
        words = line.split()
        if not words:
            continue
        numbers = re.findall(r"(RPC/s|req/s|rows/s|p50|p99|median)\s+([\d.]+)", line)
        figures[words[0]] = {k: float(v) for k, v in numbers}
        m = re.match(r"(\S+)\s+([\d.]+) ms", line)
        if m:
            figures[words[0]]["ms"] = float(m.group(2))
    if out.returncode != 0:
        figures["error"] = out.stderr[-1000:]
    return figures


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": mem[1].split()[1] if len(mem) > 1 else "",
            "python": sys.version.split()[0]}


def idle_monitor(db, **options):
    """The heartbeat monitor as the benchmarks tick it by hand: the defaults of
    ``medic serve``, its changes going nowhere (no hand-off to routing)."""
    from services.heartbeat.lifecycle import LifecyclePolicy
    from services.heartbeat.monitor import Monitor

    return Monitor(db, policy=LifecyclePolicy(), tick_seconds=0.5, batch=500, mute_ttl_seconds=86400,
                   on_committed=lambda changes: None, **options)


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def emit_figures(args: argparse.Namespace, figures: dict[str, Callable[[argparse.Namespace], dict]]) -> int:
    """Measures and emits each figure that ``args.only`` (comma-separated) names,
    in the order of ``figures``; the exit code."""
    chosen = set(args.only.split(","))
    for name, measure in figures.items():
        if name in chosen:
            emit(measure(args))
    return 0
