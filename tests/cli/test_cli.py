"""The ``quayside`` command as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quayside import save_model

QUAYSIDE = str(Path(sys.executable).parent / "quayside")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QUAYSIDE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def package(tmp_path, iris_classifier, iris) -> Path:
    path = tmp_path / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(20))
    return path


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("convert", "model", "version"):
        assert command in result.stdout


def test_version_names_quayside_and_the_runtimes():
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith("quayside ")
    assert "onnxruntime " in result.stdout


def test_convert_then_info_shows_flavor_signature_parity_and_environment(package):
    converted = run("convert", str(package), "--trust")
    assert converted.returncode == 0, converted.stderr
    assert "converted iris" in converted.stdout
    info = run("model", "info", str(package))
    assert info.returncode == 0, info.stderr
    for expected in (
        "sklearn",
        "ONNX-servable",
        "petal width (cm)",
        "probabilities",
        "label agreement",
        "scikit-learn==",
    ):
        assert expected in info.stdout, expected


def test_info_json_is_the_manifest_for_scripts(package):
    result = run("model", "info", str(package), "--json")
    body = json.loads(result.stdout)
    assert body["flavor"] == "sklearn"
    assert len(body["digest"]) == 64
    assert body["signature"]["inputs"]["type"] == "table"


def test_a_failure_is_one_error_line_and_exit_1(tmp_path):
    result = run("model", "info", str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no model package at '{tmp_path / 'nothing'}': not a directory"
    ]
    assert "Traceback" not in result.stderr


def test_converting_a_pickle_without_trust_is_refused(package):
    result = run("convert", str(package))
    assert result.returncode == 1
    assert "error: package 'iris' stores a sklearn model as a Python pickle" in result.stderr
    assert "--trust" in result.stderr


def test_parity_failure_exits_1_and_names_the_output(package):
    result = run("convert", str(package), "--trust", "--rtol", "0", "--atol", "0")
    assert result.returncode == 1
    assert "error: ONNX conversion refused, parity failed" in result.stderr
    assert "output 'probabilities'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_tampered_package_is_refused_by_info(package):
    (package / "model.pkl").write_bytes(b"not the model")
    result = run("model", "info", str(package))
    assert result.returncode == 1
    assert "does not match its sha256" in result.stderr


def test_usage_errors_exit_2():
    assert run("model", "info").returncode == 2
    assert run("convert", "x", "--samples", "-5").returncode == 2
    assert run("no-such-command").returncode == 2


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "model", "info", str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_an_invalid_setting_names_its_variable(package):
    result = subprocess.run(
        [QUAYSIDE, "convert", str(package), "--trust"],
        capture_output=True,
        text=True,
        env=os.environ | {"QUAYSIDE_PARITY_RTOL": "tight"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid setting: QUAYSIDE_PARITY_RTOL")


def test_settings_from_the_environment_set_the_parity_bar(package):
    result = subprocess.run(
        [QUAYSIDE, "convert", str(package), "--trust"],
        capture_output=True,
        text=True,
        env=os.environ | {"QUAYSIDE_PARITY_RTOL": "0", "QUAYSIDE_PARITY_ATOL": "0"},
    )
    assert result.returncode == 1
    assert "exceed the tolerance (rtol=0, atol=0)" in result.stderr


def _command_paths(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def test_every_command_s_help_renders():
    """Help text is Rich markup: a stray ``[...]`` in a docstring breaks ``--help`` of that command."""
    import typer
    from typer.testing import CliRunner

    from quayside.cli.app import app

    runner = CliRunner()
    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("serve",) in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path
