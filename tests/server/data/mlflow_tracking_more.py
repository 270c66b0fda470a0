"""MLflow's tracking calls beyond logging, from an ordinary MLflow 3 script: nothing in it knows about Quayside.

Experiment tags (at creation, set, delete, read back), deleting a run's tag, deleting and
restoring runs and experiments, searching deleted runs, searching logged models with a filter
and an order, and deleting a logged model. Run with MLFLOW_TRACKING_URI pointing at a tracking
server; prints, as one JSON line, what MLflow's own client read back (and the error codes it got).
"""

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

experiment_name = sys.argv[1] if len(sys.argv) > 1 else "mlflow-tracking-more"
client = MlflowClient()
X, y = load_iris(return_X_y=True, as_frame=True)


def error_code(call, *args):
    try:
        call(*args)
    except MlflowException as e:
        return e.error_code
    return None


def run_names(experiment_id, view_type):
    return sorted(r.info.run_name for r in client.search_runs([experiment_id], run_view_type=view_type))


# 1. Experiment tags.
experiment_id = client.create_experiment(experiment_name, tags={"team": "growth", "stage": "dev"})
client.set_experiment_tag(experiment_id, "stage", "prod")
client.set_experiment_tag(experiment_id, "owner", "ada")
client.delete_experiment_tag(experiment_id, "team")
experiment_tags = {
    "get": client.get_experiment(experiment_id).tags,
    "by_name": client.get_experiment_by_name(experiment_name).tags,
    "searched": [e.tags for e in client.search_experiments(filter_string=f"name = '{experiment_name}'")],
    "missing_tag": error_code(client.delete_experiment_tag, experiment_id, "team"),
}
mlflow.set_experiment(experiment_id=experiment_id)

# 2. A run's tag deleted; a run deleted, found among deleted runs, and restored.
with mlflow.start_run(run_name="kept") as kept:
    mlflow.set_tags({"a": "1", "b": "2"})
client.delete_tag(kept.info.run_id, "a")
with mlflow.start_run(run_name="gone") as gone:
    pass
client.delete_run(gone.info.run_id)
runs = {
    "kept_tags": {
        k: v for k, v in client.get_run(kept.info.run_id).data.tags.items() if not k.startswith("mlflow.")
    },
    "missing_tag": error_code(client.delete_tag, kept.info.run_id, "a"),
    "deleted_only": run_names(experiment_id, ViewType.DELETED_ONLY),
    "active_only": run_names(experiment_id, ViewType.ACTIVE_ONLY),
    "all": run_names(experiment_id, ViewType.ALL),
    "restore_active": error_code(client.restore_run, kept.info.run_id),
}
client.restore_run(gone.info.run_id)
runs["restored"] = client.get_run(gone.info.run_id).info.lifecycle_stage
runs["after_restore"] = run_names(experiment_id, ViewType.ACTIVE_ONLY)

# 3. Logged models: two fits, each with its param and its accuracy; searched, ordered, one deleted.
with mlflow.start_run(run_name="models"):
    logged = {}
    for C in ("0.01", "1.0"):
        fitted = LogisticRegression(C=float(C), max_iter=300).fit(X, y)
        info = mlflow.sklearn.log_model(
            fitted, name=f"lr-{C}", params={"C": C}, input_example=X.head(5), serialization_format="skops"
        )
        mlflow.log_metric("accuracy", fitted.score(X, y), model_id=info.model_id)
        logged[C] = {"id": info.model_id, "accuracy": fitted.score(X, y)}


def searched(**query):
    return [
        m.name
        for m in mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list", **query)
    ]


threshold = (logged["0.01"]["accuracy"] + logged["1.0"]["accuracy"]) / 2
weak, strong = logged["0.01"]["id"], logged["1.0"]["id"]
models = {
    "logged": logged,
    "by_param": searched(filter_string="params.C = '1.0'"),
    "by_metric": searched(filter_string=f"metrics.accuracy > {threshold}"),
    "by_name_and_status": searched(filter_string="name = 'lr-0.01' AND status = 'READY'"),
    "accuracy_desc": searched(order_by=[{"field_name": "metrics.accuracy", "ascending": False}]),
    "name_asc": searched(order_by=[{"field_name": "name", "ascending": True}]),
    "bad_filter": error_code(lambda: searched(filter_string="metrics.accuracy >")),
}
client.delete_logged_model(weak)
models["after_delete"] = searched()
models["get_deleted"] = error_code(client.get_logged_model, weak)
models["strong_predictions"] = mlflow.pyfunc.load_model(f"models:/{strong}").predict(X).tolist()

# 4. The experiment deleted (its runs with it), found among deleted experiments, and restored.
client.delete_experiment(experiment_id)
experiments = {
    "deleted": client.get_experiment(experiment_id).lifecycle_stage,
    "deleted_only": experiment_name
    in [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)],
    "active_runs_while_deleted": run_names(experiment_id, ViewType.ACTIVE_ONLY),
}
client.restore_experiment(experiment_id)
experiments["restored"] = client.get_experiment(experiment_id).lifecycle_stage
experiments["runs_after_restore"] = run_names(experiment_id, ViewType.ACTIVE_ONLY)
experiments["restore_active"] = error_code(client.restore_experiment, experiment_id)

print(
    json.dumps(
        {
            "experiment_id": experiment_id,
            "experiment_tags": experiment_tags,
            "runs": runs,
            "models": models,
            "experiments": experiments,
        }
    )
)
