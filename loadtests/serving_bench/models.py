"""The benchmark models, and each form a server needs: a Quayside package, a bare ONNX file, an MLflow model.

The forest is the issue's: a scikit-learn RandomForest (100 trees, depth 8)
on 20 float32 features of ``make_classification`` data, saved with
``quayside.save_model(..., to_onnx=True)``. The hand-written and BentoML
servers run the package's own ONNX file; MLflow serves the same fitted forest,
pickled here and saved with MLflow's API in MLflow's venv. The MLP for the
batching benchmark is a PyTorch module exported the same way.
"""

from __future__ import annotations

import pickle
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

N_FEATURES = 20
SEED = 0


@dataclass(frozen=True)
class ServedModel:
    """A saved model and what a client needs to call it."""

    name: str
    package_dir: Path
    onnx_path: Path
    input_name: str
    rows: np.ndarray
    """Held-out float32 rows the benchmark sends."""
    output_name: str
    """The output the correctness gate compares."""
    reference: np.ndarray
    """That output for ``rows``, from the native model (labels) or ONNX Runtime itself (MLP scores)."""
    exact: bool
    """Whether answers must equal ``reference`` exactly (labels) or within float32 tolerance."""
    mlflow_dir: Path | None = None


def _dataset(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=n_samples, n_features=N_FEATURES, n_informative=10, random_state=SEED
    )
    return features.astype(np.float32), labels


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _package_onnx(package_dir: Path) -> tuple[Path, str]:
    """The package's ONNX file and its (single) input name, read from quayside.yaml."""
    import quayside

    manifest = quayside.load_model(package_dir).manifest
    if manifest.onnx is None or not manifest.onnx.servable:
        raise RuntimeError(f"package {package_dir} has no servable ONNX model")
    return package_dir / manifest.onnx.file, manifest.signature.inputs.names[0]


def build_random_forest(work_dir: Path, mlflow_python: Path | None) -> ServedModel:
    """Train the forest, save it as a Quayside package (with ONNX) and, if asked, as an MLflow model."""
    from sklearn.ensemble import RandomForestClassifier

    import quayside

    features, labels = _dataset(6000)
    train, held_out = features[:5000], features[5000:]
    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=SEED, n_jobs=1)
    forest.fit(train, labels[:5000])
    package_dir = _fresh(work_dir / "rf-package")
    quayside.save_model(forest, package_dir, input_example=train[:5], to_onnx=True, name="rf")
    onnx_path, input_name = _package_onnx(package_dir)
    mlflow_dir = _save_mlflow(forest, train, work_dir, mlflow_python) if mlflow_python else None
    labels = forest.predict(held_out)
    return ServedModel("rf", package_dir, onnx_path, input_name, held_out, "label", labels, True, mlflow_dir)


def _save_mlflow(model: object, example: np.ndarray, work_dir: Path, mlflow_python: Path) -> Path:
    from serving_bench.paths import BASELINES_DIR

    pickle_path, example_path = work_dir / "rf.pkl", work_dir / "rf-example.npy"
    with pickle_path.open("wb") as f:
        pickle.dump(model, f)
    np.save(example_path, example[:100])
    mlflow_dir = _fresh(work_dir / "rf-mlflow")
    script = BASELINES_DIR / "mlflow_save.py"
    argv = [str(mlflow_python), str(script), str(pickle_path), str(example_path), str(mlflow_dir)]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"saving the MLflow model failed:\n{completed.stderr[-3000:]}")
    return mlflow_dir


def build_mlp(work_dir: Path, hidden: int) -> ServedModel:
    """A 20 → hidden → hidden → 2 ReLU MLP in PyTorch, saved as a Quayside package with ONNX."""
    import torch

    import quayside

    torch.manual_seed(SEED)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 2),
    ).eval()
    features, _ = _dataset(1000)
    package_dir = _fresh(work_dir / f"mlp{hidden}-package")
    quayside.save_model(module, package_dir, input_example=features[:5], to_onnx=True, name="mlp")
    onnx_path, input_name = _package_onnx(package_dir)
    rows = features[100:]
    output_name = quayside.load_model(package_dir).signature.outputs.names[0]
    scores = _onnx_session(onnx_path, 0).run([output_name], {input_name: rows})[0]
    return ServedModel("mlp", package_dir, onnx_path, input_name, rows, output_name, scores, False)


def _onnx_session(onnx_path: Path, intra_op_threads: int, *, spinning: bool = True) -> Any:
    """An ONNX Runtime session; ``spinning=False`` is how Quayside sets its sessions up."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class OrtTiming:
    """Median wall time of one ONNX Runtime call, in microseconds."""

    rows: int
    intra_op_threads: int
    median_us: float


def time_onnx_runtime(
    model: ServedModel, rows: int, intra_op_threads: int = 0, calls: int = 200
) -> OrtTiming:
    """Time ``session.run`` alone on ``rows`` rows, as the servers' hot path calls it."""
    session = _onnx_session(model.onnx_path, intra_op_threads)
    feed = {model.input_name: np.ascontiguousarray(model.rows[:rows])}
    for _ in range(20):
        session.run(None, feed)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        session.run(None, feed)
        samples.append(time.perf_counter() - started)
    return OrtTiming(rows, intra_op_threads, round(statistics.median(samples) * 1e6, 1))


@dataclass(frozen=True)
class MergeTiming:
    """Two requests of ``rows`` rows as one merged ONNX Runtime call, or as two calls side by side."""

    rows: int
    intra_op_threads: int
    merged_us: float
    side_by_side_us: float
    one_after_the_other_us: float


def time_merge_against_side_by_side(
    model: ServedModel, rows: int, intra_op_threads: int, calls: int = 200
) -> MergeTiming:
    """The fastest of ``calls`` of each way, interleaved, with Quayside's session settings (no spinning)."""
    from concurrent.futures import ThreadPoolExecutor

    session = _onnx_session(model.onnx_path, intra_op_threads, spinning=False)
    one = {model.input_name: np.ascontiguousarray(model.rows[:rows])}
    both = {model.input_name: np.ascontiguousarray(np.concatenate([model.rows[:rows]] * 2))}
    with ThreadPoolExecutor(2) as pool:

        def side_by_side() -> None:
            first, second = pool.submit(session.run, None, one), pool.submit(session.run, None, one)
            first.result(), second.result()

        ways = {
            "merged": lambda: session.run(None, both),
            "side_by_side": side_by_side,
            "one_after_the_other": lambda: (session.run(None, one), session.run(None, one)),
        }
        fastest = dict.fromkeys(ways, float("inf"))
        for _ in range(calls):
            for name, way in ways.items():
                started = time.perf_counter()
                way()
                fastest[name] = min(fastest[name], time.perf_counter() - started)
    return MergeTiming(
        rows,
        intra_op_threads,
        round(fastest["merged"] * 1e6, 1),
        round(fastest["side_by_side"] * 1e6, 1),
        round(fastest["one_after_the_other"] * 1e6, 1),
    )
