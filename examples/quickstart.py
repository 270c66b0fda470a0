"""Quickstart: train a small scikit-learn model, track the training as a run, and save the model.

Run through ``bash scripts/quickstart.sh``, which then converts the package to
ONNX and prints its info with the ``quayside`` CLI. The run lands in the local
tracking store (``$QUAYSIDE_HOME``, default ``~/.quayside``): see it with
``quayside runs search --experiment quickstart``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import quayside

PARAMS = {"n_estimators": 50, "max_depth": 6, "random_state": 0}


def main(destination: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    with quayside.start_run(experiment="quickstart", run_name="random-forest") as run:
        quayside.log_params(PARAMS)
        model = RandomForestClassifier(**PARAMS).fit(X_train, y_train)
        accuracy = model.score(X_test, y_test)
        quayside.log_metrics({"train_accuracy": model.score(X_train, y_train), "test_accuracy": accuracy})
        print(f"trained a random forest: test accuracy {accuracy:.3f}")
        # to_onnx=True: the registered version then serves on ONNX Runtime, with no pickle to trust.
        logged = quayside.log_model(model, "model", input_example=X_train.head(50), to_onnx=True)
        print(f"tracked run {run.run_id}: params, metrics and the model ({logged.uri})")

    # The logged model becomes version N of "breast-cancer" in the registry (lineage: this run),
    # then moves to staging; promotion to production goes through a load test.
    registry = quayside.RegistryClient()
    version = registry.register_model(logged.uri, "breast-cancer", model_description="quickstart classifier")
    staged = registry.transition(
        "breast-cancer", version.version, "staging", reason="quickstart: accuracy looks good"
    )
    print(f"registered {staged.uri} and moved it to {staged.stage}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    (destination.parent / "registered-version").write_text(f"{staged.version}\n")  # for the promote step

    if destination.exists():
        shutil.rmtree(destination)  # the quickstart owns its output folder; reruns start clean
    manifest = quayside.save_model(
        model,
        destination,
        name="breast-cancer",
        input_example=X_train.head(50),
        metadata={"dataset": "breast_cancer"},
        source_run=run.run_id,
    )
    print(f"saved package '{manifest.name}' ({manifest.flavor}) to {destination}")

    loaded = quayside.load_model(destination, trust=True)
    predictions = loaded.predict(X_test.head(3))
    print(f"reloaded it; labels for 3 test rows: {predictions['label'].tolist()}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-output/model"))
