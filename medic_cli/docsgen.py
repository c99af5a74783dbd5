"""The generated parts of ``docs/operations.md``: the configuration reference
(from ``medic.config.variables()``) and the metrics list (from the metric objects
themselves), so the docs cannot drift from the code.

    python -m medic_cli.docsgen           rewrite the generated blocks in docs/operations.md
    python -m medic_cli.docsgen --check   exit 1 when they are stale (a unit test does the same)

Each block sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->``.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from medic.config import variables

OPERATIONS_MD = Path(__file__).resolve().parent.parent / "docs" / "operations.md"

# Every module that defines Prometheus metrics, and which processes export them.
METRIC_MODULES = {
    "medic.metrics": "every process",
    "gateway.app": "gateway",
    "services.auth.metrics": "auth (and key checks in every process)",
    "services.heartbeat.metrics": "heartbeat, monitor",
    "services.routing.metrics": "routing",
    "services.delivery.metrics": "delivery",
    "services.remediation.metrics": "remediation",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_table() -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for env, default, doc in variables():
        shown = f"`{default}`" if default else "*(empty)*"
        rows.append(f"| `{env}` | {_cell(shown)} | {_cell(doc)} |")
    return "\n".join(rows)


def _metrics_of(module_name: str) -> list[tuple[str, str, tuple[str, ...], str]]:
    from prometheus_client.metrics import MetricWrapperBase

    module = importlib.import_module(module_name)
    found = []
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name + ("_total" if value._type == "counter" else "")
            found.append((name, value._type, tuple(value._labelnames), value._documentation))
    return found


def metrics_table() -> str:
    rows = ["| Metric | Type | Labels | Exported by | Meaning |", "|---|---|---|---|---|"]
    for module_name, where in METRIC_MODULES.items():
        for name, kind, labels, doc in sorted(_metrics_of(module_name)):
            shown = ", ".join(labels) if labels else ""
            rows.append(f"| `{name}` | {kind} | {_cell(shown)} | {where} | {_cell(doc)} |")
    return "\n".join(rows)


def ports_table() -> str:
    from medic.config import GRPC_SERVICES, Settings

    defaults = Settings()
    rows = ["| Process | Command | Port (variable) | Metrics (variable) |", "|---|---|---|---|"]
    for process in (*GRPC_SERVICES, "monitor"):
        rows.append(f"| {process} | `medic serve {process}` | gRPC {defaults.grpc_port(process)} "
                    f"(`MEDIC_{process.upper()}_PORT`) | {defaults.metrics_port(process)} "
                    f"(`MEDIC_{process.upper()}_METRICS_PORT`) |")
    rows.append(f"| gateway | `medic serve gateway` | HTTP {defaults.gateway_port} (`MEDIC_GATEWAY_PORT`) "
                f"| same port, `/metrics` |")
    return "\n".join(rows)


BLOCKS = {"ports": ports_table, "config": config_table, "metrics": metrics_table}


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- BEGIN generated: {name} -->\n).*?(\n<!-- END generated: {name} -->)",
                             re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"docs/operations.md lacks the generated block {name!r}")
        text = pattern.sub(lambda m: m.group(1) + make() + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medic_cli.docsgen", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the docs are stale")
    args = parser.parse_args(argv)
    current = OPERATIONS_MD.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"{OPERATIONS_MD} is stale: run python -m medic_cli.docsgen", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        OPERATIONS_MD.write_text(wanted)
        print(f"updated {OPERATIONS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
