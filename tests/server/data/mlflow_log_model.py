"""An ordinary MLflow 3 script with autologging and ``log_model``: nothing in it knows about Quayside.

Run with MLFLOW_TRACKING_URI pointing at a tracking server. Prints, as one JSON line, what
MLflow's own client reads back: the runs, their dataset inputs, the logged models, and
MLflow's own predictions from the model it loads back through the server.
"""

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

experiment = sys.argv[1] if len(sys.argv) > 1 else "mlflow-log-model"
mlflow.set_experiment(experiment)
X, y = load_iris(return_X_y=True, as_frame=True)

# 1. Autologging: params, training metrics, the training dataset and a model, all by MLflow.
mlflow.sklearn.autolog()
with mlflow.start_run(run_name="autologged") as autologged:
    LogisticRegression(max_iter=300).fit(X, y)
mlflow.sklearn.autolog(disable=True)

# 2. Explicit logging: a metric series, then the model (skops, so it loads without unpickling).
with mlflow.start_run(run_name="explicit") as explicit:
    model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_input(mlflow.data.from_pandas(X, name="iris"), context="training")
    info = mlflow.sklearn.log_model(
        model, name="model", input_example=X.head(5), serialization_format="skops"
    )

client = MlflowClient()
auto_run = client.get_run(autologged.info.run_id)
explicit_run = client.get_run(explicit.info.run_id)
logged = client.get_logged_model(info.model_id)
loaded = mlflow.pyfunc.load_model(info.model_uri)
print(
    json.dumps(
        {
            "autologged": {
                "run_id": autologged.info.run_id,
                "metrics": auto_run.data.metrics,
                "params": auto_run.data.params,
                "datasets": [
                    (d.dataset.name, d.dataset.digest, {t.key: t.value for t in d.tags})
                    for d in auto_run.inputs.dataset_inputs
                ],
                "models": [o.model_id for o in auto_run.outputs.model_outputs],
            },
            "explicit": {
                "run_id": explicit.info.run_id,
                "loss_history": [
                    (m.step, m.value) for m in client.get_metric_history(explicit.info.run_id, "loss")
                ],
                "datasets": [d.dataset.name for d in explicit_run.inputs.dataset_inputs],
                "models": [o.model_id for o in explicit_run.outputs.model_outputs],
            },
            "model": {
                "id": info.model_id,
                "uri": info.model_uri,
                "status": str(logged.status),
                "artifact_location": logged.artifact_location,
                "source_run_id": logged.source_run_id,
                "searched": [m.model_id for m in mlflow.search_logged_models(output_format="list")],
            },
            "predictions": loaded.predict(X).tolist(),
        }
    )
)
