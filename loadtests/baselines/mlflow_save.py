"""Save the benchmark's scikit-learn model as an MLflow model, with MLflow's own API.

Run by the benchmark in the MLflow venv (loadtests/.venvs/mlflow), which pins
the same scikit-learn version as the Quayside venv so that the pickle loads:

    python mlflow_save.py MODEL_PICKLE EXAMPLE_NPY OUTPUT_DIR
"""

import pickle
import sys
from pathlib import Path

import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature


def main(model_pickle: str, example_npy: str, output_dir: str) -> None:
    with Path(model_pickle).open("rb") as f:
        model = pickle.load(f)
    example = np.load(example_npy)
    signature = infer_signature(example, model.predict(example))
    # MLflow 3 saves scikit-learn models with skops, which loads only the types it is told to trust;
    # the forest's trees are our own, just trained.
    mlflow.sklearn.save_model(
        model,
        output_dir,
        signature=signature,
        input_example=example[:5],
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
