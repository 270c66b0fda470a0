"""Artifact roots become the store they name or a one-line refusal, and are proven usable at start."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quayside.artifacts import (
    LocalArtifactStore,
    S3ArtifactStore,
    check_artifact_store,
    open_artifact_store,
)
from quayside.errors import MissingExtraError, UnavailableError, UsageError
from tests.artifacts.conftest import SECRET_KEY, moto_server


def test_a_plain_path_or_a_file_uri_is_a_local_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))

    for root in (
        str(tmp_path / "a"),
        tmp_path / "a",
        f"file://{tmp_path}/a",
        f"file://localhost{tmp_path}/a",
    ):
        store = open_artifact_store(root)
        assert isinstance(store, LocalArtifactStore) and store.root == tmp_path / "a", root
    assert open_artifact_store("~/q").root == tmp_path / "q"
    assert open_artifact_store("file:///data/with%20space").root == Path("/data/with space")


def test_an_s3_uri_is_a_bucket_and_prefix_with_the_endpoint_from_the_environment(s3_environment):
    store = open_artifact_store(
        "s3://team-artifacts/quayside/prod/",
        environ={
            "QUAYSIDE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        },
    )
    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix, store.endpoint) == (
        "team-artifacts",
        "quayside/prod",
        "http://127.0.0.1:9000",
    )
    assert store.description == "s3://team-artifacts/quayside/prod at http://127.0.0.1:9000"

    fallback = open_artifact_store(
        "s3://team-artifacts", environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:9001"}
    )
    assert (fallback.prefix, fallback.endpoint) == ("", "http://127.0.0.1:9001")


@pytest.mark.parametrize(
    ("root", "message"),
    [
        (
            "ftp://x",
            "scheme 'ftp://' are not supported: use a directory path, file:///absolute/path or s3://",
        ),
        ("gs://bucket/prefix", "scheme 'gs://' are not supported"),
        ("hdfs://namenode/x", "scheme 'hdfs://' are not supported"),
        ("s3://", "an s3:// artifact root names a bucket: s3://bucket[/prefix]"),
        ("s3:///prefix", "names a bucket"),
        ("s3://Team_Artifacts/x", "is not an S3 bucket name"),
        ("s3://key:secret@bucket/x", "holds only a bucket and a prefix"),
        ("s3:bucket/x", "starts with 's3:' but is not a URI"),
        ("s3://bucket/a/../b", "the prefix of an s3:// artifact root must be a plain path"),
        ("file://otherhost/data", "names an absolute path on this machine"),
        ("", "the artifact root is empty"),
        (Path("s3://bucket/x"), "a URI scheme read as a directory"),
    ],
)
def test_a_root_that_is_no_store_is_refused_in_one_line(root, message):
    with pytest.raises(UsageError) as refused:
        open_artifact_store(root, environ={})

    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and "secret" not in str(refused.value)


def test_a_local_root_is_checked_by_writing_to_it(tmp_path):
    store = check_artifact_store(open_artifact_store(tmp_path / "new" / "root"))
    assert (tmp_path / "new" / "root").is_dir()

    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UsageError, match="cannot be created or written") as refused:
        check_artifact_store(open_artifact_store(tmp_path / "file" / "root"))
    assert "\n" not in str(refused.value)
    assert store.root == tmp_path / "new" / "root"


def test_an_s3_root_is_checked_against_its_bucket(s3_endpoint, bucket):
    store = S3ArtifactStore(bucket, "p", endpoint_url=s3_endpoint)
    assert check_artifact_store(store) is store


def _refusal(store, kind):
    started = time.monotonic()
    with pytest.raises(kind) as refused:
        check_artifact_store(store)
    elapsed = time.monotonic() - started
    text = str(refused.value)
    assert "\n" not in text and SECRET_KEY not in text and "Traceback" not in text
    assert "botocore" not in text.lower()
    assert elapsed < 10, f"the check took {elapsed:.1f} s"
    return text


def test_an_unreachable_endpoint_is_unavailable_in_one_line_quickly(s3_environment):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    store = S3ArtifactStore(
        "team-artifacts", endpoint_url=f"http://127.0.0.1:{port}", connect_timeout_s=1, max_attempts=2
    )

    text = _refusal(store, UnavailableError)

    assert "the S3 endpoint cannot be reached" in text
    assert f"bucket team-artifacts at http://127.0.0.1:{port}" in text


def test_a_missing_bucket_is_a_usage_error_naming_it(s3_endpoint):
    store = S3ArtifactStore("no-such-bucket-here", endpoint_url=s3_endpoint, max_attempts=1)

    text = _refusal(store, UsageError)

    assert (
        "the bucket does not exist; create it or fix QUAYSIDE_ARTIFACT_ROOT" in text
        and "no-such-bucket-here" in text
        and s3_endpoint in text
    )


def test_missing_credentials_are_a_usage_error_that_says_what_to_set(s3_endpoint, bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3ArtifactStore(bucket, endpoint_url=s3_endpoint, max_attempts=1)

    text = _refusal(store, UsageError)

    assert "no S3 credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in text
    assert bucket in text


def test_credentials_the_endpoint_refuses_are_a_usage_error(s3_environment, tmp_path):
    # A second server that checks signatures from its first request: moto knows no key of ours.
    with moto_server(tmp_path / "server.log", INITIAL_NO_AUTH_ACTION_COUNT="0") as endpoint:
        store = S3ArtifactStore("team-artifacts", endpoint_url=endpoint, max_attempts=1)

        text = _refusal(store, UsageError)

    assert "the S3 credentials are not allowed to use the bucket" in text
    assert f"bucket team-artifacts at {endpoint}" in text


def test_an_endpoint_with_a_password_is_shown_without_it(s3_environment):
    store = S3ArtifactStore("team-artifacts", endpoint_url="http://user:hunter2@127.0.0.1:9/?token=abc")

    assert store.endpoint == "http://127.0.0.1:9"
    assert "hunter2" not in repr(store) and "abc" not in store.description


def test_the_artifacts_package_imports_boto3_only_for_an_s3_store():
    code = (
        "import sys, quayside.artifacts as a\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)\n"
        "a.open_artifact_store('/tmp/quayside-never-written')\n"
        "print('boto3' in sys.modules)\n"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).split() == [
        "False",
        "False",
        "False",
    ]


def test_a_missing_boto3_names_the_extra_to_install():
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from quayside.artifacts import open_artifact_store\n"
        "from quayside.errors import MissingExtraError\n"
        "try:\n"
        "    open_artifact_store('s3://bucket/prefix', environ={})\n"
        "except MissingExtraError as e:\n"
        "    print(e.message)\n"
    )
    output = subprocess.check_output([sys.executable, "-c", code], text=True)
    assert "the 's3' extra is needed for an s3:// artifact root" in output
    assert "pip install 'quayside[s3]'" in output
    assert MissingExtraError.code == "missing_extra"
