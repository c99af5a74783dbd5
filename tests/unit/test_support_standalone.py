"""The benchmarks and the helpers they share with the tests run on a plain
``pip install .``: none of them imports pytest or another package of the
``test`` extra."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import tests.support

REPO = Path(__file__).resolve().parents[2]
# The `test` extra of pyproject.toml, by import name.
TEST_ONLY = ("pytest", "_pytest", "pytest_timeout", "standardwebhooks", "yaml", "trustme", "importlinter",
             "schemathesis", "playwright", "xdist")
BENCHMARKS = sorted(f"bench.{p.stem}" for p in (REPO / "bench").glob("*.py") if p.stem != "__init__")

IMPORT_WITHOUT_TEST_EXTRA = """
import importlib, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        refused = sys.argv[1].split(",")
        if name in refused or name.split(".")[0] in refused:
            raise ModuleNotFoundError(f"{name} is refused here")
sys.meta_path.insert(0, Refuse())
for module in sys.argv[2:]:
    importlib.import_module(module)
"""


def test_benchmarks_and_support_modules_import_without_the_test_extra():
    support = [f"tests.support.{m.name}" for m in pkgutil.iter_modules(tests.support.__path__)]
    assert "bench.bench_delivery" in BENCHMARKS and "tests.support.delivery" in support
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_TEST_EXTRA, ",".join(TEST_ONLY), *support, *BENCHMARKS],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_module_importing_pytest_is_caught():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_TEST_EXTRA, ",".join(TEST_ONLY), "tests.conftest"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "pytest is refused here" in result.stderr


def test_a_checkout_run_before_an_installed_copy_finds_its_own_migrations():
    """bench/ puts the checkout first on sys.path; after a non-editable install
    its medic/ has no medic.migrations package (setup.py maps it at install)."""
    script = IMPORT_WITHOUT_TEST_EXTRA.replace("for module in sys.argv[2:]:\n    importlib.import_module(module)\n", "") + (
        "from medic import migrate\n"
        "print(','.join(m.label for m in migrate.available()))\n")
    result = subprocess.run([sys.executable, "-c", script, "medic.migrations"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = sorted(p.stem for p in (REPO / "migrations").glob("*.sql"))
    assert result.stdout.strip().split(",") == expected
