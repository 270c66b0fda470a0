"""Versions of one iris model for the alias-following tests (their registry is in the conftest).

Versions 1 and 2 are ONNX forests that disagree on some rows (so an answer shows which one gave
it); version 3 is a pickle without ONNX, which a server that does not trust pickles cannot load.
``champion`` starts on version 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

import quayside

NAME = "churn"
SEEDS = {1: 0, 2: 7}


def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


def save_forest(
    path: Path, *, seed: int, name: str, trees: int = 3, depth: int = 2, onnx: bool = True
) -> Path:
    """An iris forest saved as a package (ONNX-servable unless ``onnx`` is false)."""
    X, y = iris()
    model = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=seed).fit(X, y)
    quayside.save_model(model, path, input_example=X[:10], to_onnx=onnx, name=name)
    return path


def expected(packages: dict[int, Path], version: int, rows: np.ndarray) -> np.ndarray:
    """Version ``version``'s labels for ``rows``, as the package predicts them in process."""
    return quayside.load_model(packages[version]).predict(rows)["label"]
