"""Package integrity: tampered, incomplete and escaping packages are refused before anything loads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from quayside import load_model, save_model
from quayside.errors import AlreadyExistsError, NotFoundError, PackageError, PackageIntegrityError
from quayside.packager.manifest import MANIFEST_NAME, PackageReader, check_relative_path


@pytest.fixture
def package(tmp_path, iris_classifier, iris) -> Path:
    X, _ = iris
    path = tmp_path / "iris"
    save_model(iris_classifier, path, input_example=X.head(10), to_onnx=True)
    return path


def _edit_manifest(path: Path, edit) -> None:
    manifest_file = path / MANIFEST_NAME
    data = yaml.safe_load(manifest_file.read_text())
    edit(data)
    manifest_file.write_text(yaml.safe_dump(data))


def test_an_intact_package_verifies(package):
    reader = PackageReader.open(package)
    assert {f.path for f in reader.manifest.files} == {"model.pkl", "model.onnx"}


def test_one_changed_byte_is_refused(package):
    target = package / "model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(PackageIntegrityError, match=r"'model\.onnx' does not match its sha256"):
        load_model(package)


def test_a_missing_file_is_refused(package):
    (package / "model.pkl").unlink()
    with pytest.raises(PackageIntegrityError, match=r"'model\.pkl' is missing: the package is incomplete"):
        load_model(package, trust=True)


@pytest.mark.parametrize(
    "bad_path, message",
    [
        ("../x", "escapes the package"),
        ("sub/../../x", "escapes the package"),
        ("/etc/passwd", "is absolute"),
        ("~/x", "is absolute"),
        ("a\\..\\x", "not a plain relative path"),
    ],
)
def test_a_manifest_path_that_leaves_the_package_is_refused(package, bad_path, message):
    def point_outside(data):
        data["files"][0]["path"] = bad_path

    _edit_manifest(package, point_outside)
    with pytest.raises(PackageIntegrityError, match=message):
        load_model(package)


def test_a_symlink_that_escapes_the_package_is_refused(package, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((package / "model.onnx").read_bytes())
    (package / "model.onnx").unlink()
    os.symlink(outside, package / "model.onnx")
    with pytest.raises(PackageIntegrityError, match="leads outside the package"):
        load_model(package)


def test_a_symlinked_manifest_is_not_read(package, tmp_path):
    moved = tmp_path / "elsewhere.yaml"
    (package / MANIFEST_NAME).rename(moved)
    os.symlink(moved, package / MANIFEST_NAME)
    with pytest.raises(NotFoundError, match=r"quayside\.yaml is missing"):
        load_model(package)


def test_a_malformed_manifest_names_the_problem(package):
    _edit_manifest(package, lambda data: data.pop("signature"))
    with pytest.raises(PackageError, match="missing or invalid field 'signature'"):
        load_model(package)


def test_a_package_from_a_newer_format_asks_for_an_upgrade(package):
    _edit_manifest(package, lambda data: data.update(format_version=99))
    with pytest.raises(PackageError, match="upgrade quayside"):
        load_model(package)


def test_saving_over_an_existing_package_is_refused(package, iris_classifier, iris):
    before = (package / MANIFEST_NAME).read_bytes()
    with pytest.raises(AlreadyExistsError):
        save_model(iris_classifier, package, input_example=iris[0].head())
    assert (package / MANIFEST_NAME).read_bytes() == before


def test_plain_relative_paths_are_accepted():
    assert str(check_relative_path("weights/model.bin")) == "weights/model.bin"


def test_the_manifest_records_what_the_format_promises(package):
    data = yaml.safe_load((package / MANIFEST_NAME).read_text())
    assert data["format_version"] == 1
    assert data["flavor"] == "sklearn"
    assert data["name"] == "iris"
    assert data["created_at"]
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in data["files"])
    assert data["environment"]["python"].count(".") == 2
    assert any(r.startswith("scikit-learn==") for r in data["environment"]["requirements"])
    assert any(r.startswith("onnxruntime==") for r in data["environment"]["onnx_requirements"])
    assert len(data["input_example"]["petal width (cm)"]) == 10
    assert data["onnx"]["servable"] is True
