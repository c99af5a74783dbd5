"""The shape of the code, as import-linter contracts (``[tool.importlinter]`` in pyproject.toml):

* ``medic_cli`` (the program) sits above ``gateway`` and ``services``, which sit above the shared
  runtime ``medic``; nothing imports upwards;
* the gateway and the services are independent of each other, and so is every service of every
  other one (they talk over gRPC through the generated stubs).

The second test copies the code, adds one forbidden import and checks the contracts catch it,
so a contract that checks nothing cannot pass unnoticed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("medic", "medic_cli", "gateway", "services")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, forbidden, contract", [
    ("medic/config.py", "import services.heartbeat.deadline", "Layers:"),
    ("medic/db.py", "import medic_cli.main", "Layers:"),
    ("gateway/http.py", "import services.delivery.retry", "Layers:"),
    ("services/routing/selection.py", "import services.delivery.retry", "Services are independent"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, forbidden, contract):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{forbidden}  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout
    assert forbidden.split()[1] in result.stdout
