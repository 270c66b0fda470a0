"""An ordinary MLflow training script: nothing in it knows about Quayside.

Run with MLFLOW_TRACKING_URI pointing at a tracking server; prints what it logged, and what
MLflow's own client reads back, as one JSON line.
"""

import json
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

experiment = sys.argv[1] if len(sys.argv) > 1 else "mlflow-script"
mlflow.set_experiment(experiment)

X, y = load_iris(return_X_y=True)
with mlflow.start_run(run_name="logreg") as run:
    mlflow.log_param("C", 0.5)
    mlflow.log_params({"solver": "lbfgs", "max_iter": 200})
    mlflow.set_tag("team", "growth")
    mlflow.set_tags({"stage": "dev", "data": "iris"})
    model = LogisticRegression(C=0.5, max_iter=200).fit(X, y)
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"accuracy": float(model.score(X, y)), "f1": 0.5}, step=4)
    with tempfile.TemporaryDirectory() as scratch:
        notes = Path(scratch) / "notes.txt"
        notes.write_text("trained on iris\n")
        mlflow.log_artifact(str(notes))
        mlflow.log_artifact(str(notes), artifact_path="reports")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("fold_loss", 0.25)
run_id = run.info.run_id

client = MlflowClient()
read = client.get_run(run_id)
print(
    json.dumps(
        {
            "run_id": run_id,
            "child_run_id": child.info.run_id,
            "experiment_id": run.info.experiment_id,
            "status": read.info.status,
            "params": read.data.params,
            "metrics": read.data.metrics,
            "tags": read.data.tags,
            "loss_history": [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")],
            "artifacts": sorted(a.path for a in client.list_artifacts(run_id)),
            "searched": [r.info.run_id for r in mlflow.search_runs(output_format="list")],
            "downloaded": Path(client.download_artifacts(run_id, "reports/notes.txt")).read_text(),
        }
    )
)
