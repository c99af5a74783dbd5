"""docs/operations.md matches the code: its configuration reference, ports and
metrics tables are what ``python -m medic_cli.docsgen`` generates from the settings
and the metric objects."""
from __future__ import annotations

from pathlib import Path

from medic_cli import docsgen
from medic.config import variables

REPO = Path(__file__).resolve().parents[2]


def test_generated_tables_in_operations_md_are_current():
    current = docsgen.OPERATIONS_MD.read_text()
    assert docsgen.render(current) == current, "docs/operations.md is stale: run python -m medic_cli.docsgen"


def test_config_reference_lists_every_setting_once():
    table = docsgen.config_table()
    for env, _default, _doc in variables():
        assert table.count(f"| `{env}` |") == 1, env


def test_every_module_defining_metrics_is_in_the_metrics_list():
    defining = set()
    for folder in ("medic", "services", "gateway"):
        for path in (REPO / folder).rglob("*.py"):
            if "from prometheus_client import" in path.read_text() and path.name != "docsgen.py":
                module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                if any(kind in path.read_text() for kind in ("Counter(", "Gauge(", "Histogram(")):
                    defining.add(module)
    assert defining <= set(docsgen.METRIC_MODULES)
