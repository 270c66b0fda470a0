"""Quickstart: train a small scikit-learn model and save it as a Quayside package.

Run through ``bash scripts/quickstart.sh``, which then converts the package to
ONNX and prints its info with the ``quayside`` CLI.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import quayside


def main(destination: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    model = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0).fit(X_train, y_train)
    print(f"trained a random forest: test accuracy {model.score(X_test, y_test):.3f}")

    if destination.exists():
        shutil.rmtree(destination)  # the quickstart owns its output folder; reruns start clean
    manifest = quayside.save_model(
        model,
        destination,
        name="breast-cancer",
        input_example=X_train.head(50),
        metadata={"dataset": "breast_cancer"},
    )
    print(f"saved package '{manifest.name}' ({manifest.flavor}) to {destination}")

    loaded = quayside.load_model(destination, trust=True)
    predictions = loaded.predict(X_test.head(3))
    print(f"reloaded it; labels for 3 test rows: {predictions['label'].tolist()}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-output/model"))
