from tests import venvs

# The real mlflow and bentoml, each in a venv of its own (tests/venvs.py).
mlflow_venv = venvs.mlflow_venv
bentoml_venv = venvs.bentoml_venv
