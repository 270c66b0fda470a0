"""Fixtures shared by the whole suite: small real models trained on bundled or synthetic data."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# The terminal size of whatever runs the suite must not shape what the CLI prints in it:
# pytest-xdist's workers get COLUMNS=80 and LINES=24, which would freeze the width of the
# consoles the CLI makes at import and pass into every subprocess a test starts. Tests that
# read tables set the width they need; without these, Rich asks the output itself.
for _terminal_size in ("COLUMNS", "LINES"):
    os.environ.pop(_terminal_size, None)


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def iris_classifier(iris):
    X, y = iris
    return LogisticRegression(max_iter=1000).fit(X, y)


@pytest.fixture(scope="session")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def diabetes_regressor(diabetes):
    X, y = diabetes
    return LinearRegression().fit(X, y)


@pytest.fixture(scope="session")
def mixed_frame() -> pd.DataFrame:
    """A table with float, int, bool and string columns."""
    rng = np.random.default_rng(7)
    n = 200
    return pd.DataFrame(
        {
            "income": rng.normal(50_000, 12_000, n),
            "age": rng.integers(18, 90, n),
            "member": rng.random(n) > 0.5,
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )


@pytest.fixture(scope="session")
def mixed_pipeline(mixed_frame):
    """A ColumnTransformer pipeline over mixed dtypes, classifying on all of them."""
    X = mixed_frame[["income", "age", "plan"]]
    y = ((X["income"] > 50_000) ^ (X["plan"] == "pro")).astype(int)
    columns = ColumnTransformer(
        [("numbers", StandardScaler(), ["income", "age"]), ("plan", OneHotEncoder(), ["plan"])]
    )
    return make_pipeline(columns, LogisticRegression()).fit(X, y), X


# --- a real S3 endpoint for every package's tests (moto's server over HTTP) -----------------------


@pytest.fixture(scope="session")
def s3_session_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """``http://127.0.0.1:PORT`` of a moto S3 server for the whole session, with the dummy AWS
    credentials in the environment (so servers started as subprocesses reach it too)."""
    from tests.artifacts.conftest import aws_environment, moto_server

    with pytest.MonkeyPatch.context() as env:
        aws_environment(env)
        with moto_server(tmp_path_factory.mktemp("moto-session") / "server.log") as endpoint:
            yield endpoint


@pytest.fixture(scope="session")
def s3_session_client(s3_session_endpoint: str):
    """A plain boto3 client of the session's moto server: the tests' way behind a store's back."""
    import boto3
    from botocore.config import Config

    from tests.artifacts.conftest import ACCESS_KEY, REGION, SECRET_KEY

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client("s3", endpoint_url=s3_session_endpoint, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def s3_session_bucket(s3_session_client) -> str:
    """One bucket on the session's moto server (tests keep apart by prefix or by run id)."""
    import uuid

    name = f"quayside-session-{uuid.uuid4().hex[:12]}"
    s3_session_client.create_bucket(Bucket=name)
    return name
