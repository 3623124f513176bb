"""The borders in .importlinter hold, and they would catch a break: each test copies the code, adds one import
that crosses a border, and expects lint-imports to fail naming the contract it broke."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tango_site", "projects", "recommender", "training", "deployment", "visualizer", "tango_common")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "400"}  # one contract per output line
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def copy(tmp_path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns(
            "__pycache__", "templates", "static", "migrations"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


@pytest.mark.parametrize("module,line,contract", [
    ("training/engine/breach.py", "import django.db\n", "import no Django"),
    ("deployment/engine/breach.py", "from training.engine import zoo\n", "independent of each other"),
    ("projects/breach.py", "import recommender.models\n", "One way"),
    ("tango_common/breach.py", "from projects import models\n", "One way"),
    ("projects/datasets/breach.py", "from projects import services\n", "no app shell"),
])
def test_a_crossed_border_fails_lint_imports(copy, module, line, contract):
    (copy / module).write_text(f'"""A deliberate breach."""\n\n{line}')
    done = lint_imports(copy)
    assert done.returncode != 0
    broken = [row for row in done.stdout.splitlines() if " BROKEN" in row]
    assert any(contract in row for row in broken), done.stdout[-3000:]


def test_the_code_as_it_is_keeps_every_contract(copy):
    done = lint_imports(copy)
    assert done.returncode == 0, done.stdout[-3000:]
