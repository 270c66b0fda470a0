"""The real MLflow client against `quayside server --auth`: each step's outcome as one JSON line.

Credentials come from MLflow's own variables (MLFLOW_TRACKING_TOKEN, or
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD); nothing here knows about Quayside.

    python mlflow_auth.py write EXPERIMENT     create the experiment and log a run into it
    python mlflow_auth.py read-write RUN_ID    read the run, then try to log a metric to it
    python mlflow_auth.py search               list experiments
"""

import json
import sys

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def attempt(step):
    try:
        return {"ok": True, "value": step()}
    except MlflowException as e:
        return {
            "ok": False,
            "status": e.get_http_status_code(),
            "error_code": e.error_code,
            "message": e.message,
        }


def write(experiment):
    experiment_id = mlflow.create_experiment(experiment)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("C", 0.5)
        mlflow.log_metric("loss", 0.25, step=1)
    return {"experiment_id": experiment_id, "run_id": run.info.run_id}


def read_write(run_id):
    client = MlflowClient()
    return {
        "read": attempt(lambda: client.get_run(run_id).data.metrics),
        "log_metric": attempt(lambda: client.log_metric(run_id, "accuracy", 0.9, step=2)),
    }


def search():
    return [e.name for e in mlflow.search_experiments()]


action = sys.argv[1]
if action == "write":
    result = attempt(lambda: write(sys.argv[2]))
elif action == "read-write":
    result = read_write(sys.argv[2])
else:
    result = attempt(search)
print(json.dumps(result))
