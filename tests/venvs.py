"""Separate venvs with the real ``mlflow`` and ``bentoml`` for the bridge tests.

Both pin versions of packages Quayside's own venv uses (python-dateutil for mlflow,
opentelemetry-api for bentoml), so they cannot join the dev venv. Each lives under
``.cache/test-venvs/<name>`` at the repository root, is created on first use by a
session fixture, and is reused while the requirements it was installed with
(recorded in a marker file after a successful install) are the ones asked for now;
when they change, pip installs what is missing into the venv as it stands.
The libraries both sides touch (scikit-learn, NumPy, pandas, ONNX, ONNX Runtime,
skops; XGBoost, LightGBM and PyTorch for MLflow's flavors of them) are pinned to the
dev venv's versions, so a model saved on one side loads on the other and a
difference in predictions is a difference in the code under test.

The mlflow venv also holds Quayside itself, editable from this checkout with its core
dependencies only: an imported custom ``pyfunc`` model unpickles MLflow's
``PythonModel`` base class, so importing and predicting with it can only be tested
where MLflow is importable. pip resolves Quayside's core dependencies together with
MLflow's, so a version MLflow cannot work with fails the install instead of replacing
one MLflow needs (``pip check`` in the venv finds nothing broken).

A venv that cannot be created fails the tests that need it: nothing is skipped.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENVS_DIR = ROOT / ".cache" / "test-venvs"
MARKER = ".requirements"
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Venv:
    """A venv for the tests: its name and what it holds."""

    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        return VENVS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, program: str) -> Path:
        return self.path / "bin" / program

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        """Run this venv's Python; fails with its output when it exits non-zero."""
        result = subprocess.run(
            [str(self.python), *args], capture_output=True, text=True, timeout=300, **kwargs
        )
        assert result.returncode == 0, f"{self.name} python {args} failed:\n{result.stdout}\n{result.stderr}"
        return result


def pinned(package: str) -> str:
    """``package==<version in this (the dev) venv>``: the same library on both sides."""
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        raise AssertionError(f"{package} is part of the dev extra but is not installed") from None


def ensure_venv(venv: Venv) -> Venv:
    """Create ``venv`` and install its requirements, unless it already holds exactly these."""
    marker = venv.path / MARKER
    wanted = "\n".join(venv.requirements) + "\n"
    if venv.python.exists() and marker.exists() and marker.read_text() == wanted:
        return venv
    if not venv.python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True)
    log = Path(f"{venv.path}.log")
    with log.open("a") as output:
        installed = subprocess.run(
            [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", *venv.requirements],
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=INSTALL_TIMEOUT_S,
        )
    if installed.returncode != 0:
        raise AssertionError(
            f"could not install {venv.name}'s venv ({' '.join(venv.requirements)}); see {log}"
        )
    marker.write_text(wanted)
    return venv


def shared_pins() -> tuple[str, ...]:
    return tuple(pinned(p) for p in ("scikit-learn", "numpy", "pandas", "onnx", "onnxruntime", "skops"))


def framework_pins() -> tuple[str, ...]:
    """The frameworks of MLflow's xgboost, lightgbm and pytorch flavors, as the dev venv has them.

    torch is the dev venv's CPU build (``torch==2.13.0+cpu``), which pip takes from the local
    wheel; a looser spec would resolve to PyPI's CUDA build and download gigabytes.
    """
    return tuple(pinned(p) for p in ("xgboost", "lightgbm", "torch"))


def mlflow_spec() -> Venv:
    return Venv("mlflow", ("mlflow>=3.0", *shared_pins(), *framework_pins(), f"--editable={ROOT}"))


def bentoml_spec() -> Venv:
    return Venv("bentoml", ("bentoml>=1.2", pinned("onnxruntime"), pinned("numpy")))


@pytest.fixture(scope="session")
def mlflow_venv() -> Venv:
    """A venv with the real MLflow, the dev venv's model libraries, and this checkout of Quayside."""
    return ensure_venv(mlflow_spec())


@pytest.fixture(scope="session")
def bentoml_venv() -> Venv:
    """A venv with the real BentoML and the dev venv's ONNX Runtime and NumPy."""
    return ensure_venv(bentoml_spec())


if __name__ == "__main__":
    # scripts/test.sh builds both while the rest of its set-up runs, so pytest finds them ready;
    # the fixtures above still build (or fail) on their own when this did not run.
    for spec in (mlflow_spec(), bentoml_spec()):
        ensure_venv(spec)
