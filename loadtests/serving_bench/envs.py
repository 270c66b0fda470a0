"""One venv per competitor under loadtests/.venvs/, installed with pip and reused when present.

A venv is reused when the requirements it was installed with (written to a
marker file after a successful install) are the ones asked for now; otherwise
pip installs into it again. pip's output goes to a log beside the venv.

The hand-written baseline pins the Quayside venv's own versions of FastAPI,
uvicorn, ONNX Runtime and NumPy, and BentoML the same ONNX Runtime, so that a
difference in the results is a difference in the servers, not in the
libraries under them. The MLflow venv pins scikit-learn to the version that
trained the model, so that its pickle loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from serving_bench.paths import VENVS_DIR

_MARKER = ".bench-requirements"


@dataclass(frozen=True)
class Venv:
    """A competitor's venv: where it is and what it needs."""

    name: str
    requirements: tuple[str, ...]
    reported_packages: tuple[str, ...]
    """Packages whose versions the report lists."""

    @property
    def path(self) -> Path:
        return VENVS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    def bin(self, program: str) -> Path:
        return self.bin_dir / program


def _pin(package: str) -> str:
    """``package==<the version in the Quayside venv>``, or the bare name if it is not installed there."""
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return package


def handwritten_venv() -> Venv:
    return Venv(
        "handwritten",
        (
            _pin("fastapi"),
            _pin("uvicorn").replace("uvicorn", "uvicorn[standard]", 1),
            _pin("onnxruntime"),
            _pin("numpy"),
        ),
        ("fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "onnxruntime", "numpy"),
    )


def bentoml_venv() -> Venv:
    return Venv(
        "bentoml",
        ("bentoml", _pin("onnxruntime"), "numpy"),
        ("bentoml", "uvicorn", "starlette", "pydantic", "onnxruntime", "numpy"),
    )


def mlflow_venv() -> Venv:
    return Venv(
        "mlflow",
        ("mlflow", _pin("scikit-learn")),
        ("mlflow", "uvicorn", "fastapi", "scikit-learn", "pandas", "numpy"),
    )


def pyspy_venv() -> Venv:
    return Venv("py-spy", ("py-spy",), ("py-spy",))


def ensure_venv(venv: Venv) -> Venv:
    """Create ``venv`` and install its requirements, unless it already holds exactly these."""
    marker = venv.path / _MARKER
    wanted = "\n".join(venv.requirements) + "\n"
    if venv.python.exists() and marker.exists() and marker.read_text() == wanted:
        return venv
    print(f"  installing {venv.name} venv: {' '.join(venv.requirements)} (log: {venv.path}.log)", flush=True)
    if not venv.python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True)
    with Path(f"{venv.path}.log").open("a") as log:
        subprocess.run(
            [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", *venv.requirements],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    marker.write_text(wanted)
    return venv


def package_versions(python: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """Versions of ``packages`` as installed for the interpreter ``python`` ("-" when missing)."""
    script = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "def v(p):\n"
        "    try: return version(p)\n"
        "    except PackageNotFoundError: return '-'\n"
        "print(json.dumps({p: v(p) for p in sys.argv[1:]}))\n"
    )
    completed = subprocess.run(
        [str(python), "-c", script, *packages], capture_output=True, text=True, check=True
    )
    return dict(json.loads(completed.stdout))
