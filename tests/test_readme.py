"""The README's two set-up commands are the ones CI and users run, and the quickstart works as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line and not line.startswith("#")]


def test_the_readme_has_exactly_two_setup_commands_and_ci_runs_the_second():
    commands = _setup_commands()
    assert commands == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    ci = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert ci[-1] == "exec bash scripts/test.sh"


@pytest.mark.serial  # it reinstalls Quayside into the venv every other test process runs from
def test_the_quickstart_command_runs_as_written(tmp_path):
    env = os.environ | {
        "QUAYSIDE_VENV": sys.prefix,
        "QUICKSTART_DIR": str(tmp_path),
        "QUAYSIDE_HOME": str(tmp_path / "home"),
    }
    result = subprocess.run(
        _setup_commands()[0].split(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test accuracy" in result.stdout
    assert "converted breast-cancer" in result.stdout
    assert "ONNX-servable  yes" in result.stdout
    assert (tmp_path / "model" / "model.onnx").is_file()
    assert "all objectives met" in result.stdout + result.stderr
    assert "to production" in result.stdout


def test_the_readmes_permission_table_is_the_one_in_the_code():
    from quayside.identity.model import ACTIONS, Level, ResourceKind

    readme = (ROOT / "README.md").read_text()
    for level in (Level.READ, Level.EDIT, Level.MANAGE):
        experiment = "; ".join(ACTIONS[ResourceKind.EXPERIMENT][level])
        model = "; ".join(ACTIONS[ResourceKind.MODEL][level])
        assert f"| `{level}` | {experiment} | {model} |" in readme
