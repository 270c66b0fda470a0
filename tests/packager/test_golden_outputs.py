"""Golden outputs: a package records what the model answered for its input example when saved.

Saving, converting and importing from MLflow record them in the manifest (covered by its
digest) with their dtypes and shapes; ``check_outputs`` compares a later runtime's
answers with them: labels exactly, floats within the package's parity tolerance.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from quayside import convert_package, infer_signature, load_model, save_model
from quayside.errors import PackageError, ParityError
from quayside.packager.golden import (
    NO_EXAMPLE,
    NOT_RECORDED,
    GoldenOutputs,
    check_outputs,
    record_golden,
)
from quayside.packager.manifest import MANIFEST_NAME, PackageReader, read_manifest
from quayside.packager.parity import Tolerance

DATA = Path(__file__).parent / "data"
QUAYSIDE = str(Path(sys.executable).parent / "quayside")


@pytest.fixture
def example(iris):
    return iris[0].head(10)


@pytest.fixture
def package(tmp_path, iris_classifier, example) -> Path:
    path = tmp_path / "iris"
    save_model(iris_classifier, path, input_example=example)
    return path


def _edit_manifest(path: Path, edit) -> None:
    manifest_file = path / MANIFEST_NAME
    data = yaml.safe_load(manifest_file.read_text())
    edit(data)
    manifest_file.write_text(yaml.safe_dump(data, sort_keys=False))


# --- recorded at save ----------------------------------------------------------------------


def test_a_saved_classifier_records_exactly_what_it_predicted_for_its_example(
    tmp_path, iris_classifier, example
):
    manifest = save_model(iris_classifier, tmp_path / "iris", input_example=example)

    golden = manifest.golden_outputs()
    assert list(golden) == manifest.signature.outputs.names == ["label", "probabilities"]
    assert manifest.golden_missing is None
    label, probabilities = iris_classifier.predict(example), iris_classifier.predict_proba(example)
    assert golden["label"].dtype == label.dtype and golden["label"].shape == (10,)
    np.testing.assert_array_equal(golden["label"], label)
    assert golden["probabilities"].dtype == np.float64 and golden["probabilities"].shape == (10, 3)
    np.testing.assert_array_equal(golden["probabilities"], probabilities)  # exact, not close


def test_golden_outputs_read_back_from_the_manifest_file_are_the_saved_ones(package):
    data = yaml.safe_load((package / MANIFEST_NAME).read_text())
    stored = data["golden_outputs"]["outputs"]
    assert stored["label"]["dtype"] == "int64" and stored["label"]["shape"] == [10]
    assert stored["probabilities"]["dtype"] == "float64" and stored["probabilities"]["shape"] == [10, 3]

    reader = PackageReader.open(package)
    native = load_model(package, trust=True, runtime="native").predict(read_manifest(package).input_example)
    golden = reader.manifest.golden_outputs()
    for name, answer in native.items():
        assert golden[name].dtype == answer.dtype and golden[name].shape == answer.shape
        np.testing.assert_array_equal(golden[name], answer)
    assert check_outputs(golden, native) == []


def test_dtypes_shapes_and_special_values_survive_the_manifest_exactly():
    outputs = {
        "scores": np.array([[0.1, np.nan], [np.inf, -np.inf], [1e-38, 3.4e38]], dtype=np.float32),
        "half": np.array([0.1, 65504], dtype=np.float16),
        "counts": np.array([-128, 127], dtype=np.int8),
        "ids": np.array([0, np.iinfo(np.uint64).max], dtype=np.uint64),
        "flags": np.array([True, False]),
        "names": np.array(["setosa", None, "virginica, 'quoted'"], dtype=object),
        "fixed": np.array(["a", "bc"]),
        "empty": np.zeros((0, 3), dtype=np.float64),
    }
    golden = record_golden(outputs, list(outputs))
    text = yaml.safe_dump(golden.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None)
    back = GoldenOutputs.from_dict(yaml.safe_load(text)).arrays()

    assert list(back) == list(outputs)
    for name, array in outputs.items():
        expected_dtype = object if array.dtype.kind == "U" else array.dtype
        assert back[name].dtype == expected_dtype, name
        assert back[name].shape == array.shape, name
        np.testing.assert_array_equal(back[name], array.astype(expected_dtype))
    assert check_outputs(outputs, back, Tolerance(rtol=0, atol=0)) == []


def test_the_manifest_digest_covers_the_golden_outputs(package):
    before = read_manifest(package).digest()

    def shift_a_probability(data):
        data["golden_outputs"]["outputs"]["probabilities"]["data"][3][0] += 0.5

    _edit_manifest(package, shift_a_probability)
    assert read_manifest(package).digest() != before


def test_an_onnx_model_records_what_onnx_runtime_answered(tmp_path, iris):
    X = iris[0].to_numpy(np.float32)
    model = LogisticRegression(max_iter=1000).fit(X, iris[1])
    graph = to_onnx(model, X[:1], options={"zipmap": False})

    manifest = save_model(graph, tmp_path / "graph", input_example=X[:5])

    golden = manifest.golden_outputs()
    answers = load_model(tmp_path / "graph").predict(X[:5])
    assert list(golden) == manifest.signature.outputs.names
    for name, answer in answers.items():
        assert golden[name].dtype == answer.dtype
        np.testing.assert_array_equal(golden[name], answer)


# --- convert ---------------------------------------------------------------------------------


def test_convert_keeps_the_native_golden_outputs_and_onnx_runtimes_answers_match_them(package, example):
    saved = read_manifest(package)

    converted = convert_package(package, trust=True)

    assert converted.golden == saved.golden
    assert read_manifest(package).golden == saved.golden
    onnx = load_model(package)
    assert onnx.runtime == "onnx"
    answers = onnx.predict(example)
    golden = converted.golden_outputs()
    # ONNX Runtime computes in float32: close to what scikit-learn answered, not equal.
    assert not np.array_equal(answers["probabilities"], golden["probabilities"])
    assert converted.parity_tolerance() == Tolerance()
    assert check_outputs(golden, answers, converted.parity_tolerance()) == []


def test_save_with_onnx_records_the_native_answers_and_the_tolerance_it_checked_with(
    tmp_path, iris_classifier, example
):
    tolerance = Tolerance(rtol=1e-3, atol=1e-4)
    manifest = save_model(
        iris_classifier, tmp_path / "iris", input_example=example, to_onnx=True, tolerance=tolerance
    )
    np.testing.assert_array_equal(
        manifest.golden_outputs()["probabilities"], iris_classifier.predict_proba(example)
    )
    assert manifest.parity_tolerance() == Tolerance(rtol=1e-3, atol=1e-4)
    answers = load_model(tmp_path / "iris").predict(example)
    assert check_outputs(manifest.golden_outputs(), answers, manifest.parity_tolerance()) == []


def test_convert_refuses_an_onnx_model_that_does_not_answer_as_the_golden_outputs_say(package):
    # As when the native model answers differently here than where it was saved.
    def change_a_label(data):
        labels = data["golden_outputs"]["outputs"]["label"]["data"]
        labels[4] = (labels[4] + 1) % 3

    _edit_manifest(package, change_a_label)
    before = {p.name: p.read_bytes() for p in package.iterdir()}
    with pytest.raises(ParityError, match=r"golden outputs.*output 'label', row 4: expected \d, got \d"):
        convert_package(package, trust=True)
    assert {p.name: p.read_bytes() for p in package.iterdir()} == before


# --- check_outputs ---------------------------------------------------------------------------


def test_a_tampered_golden_output_is_reported_with_its_output_row_and_values(package, example):
    answers = load_model(package, trust=True).predict(example)

    def tamper(data):
        outputs = data["golden_outputs"]["outputs"]
        outputs["label"]["data"][5] = (outputs["label"]["data"][5] + 1) % 3
        outputs["probabilities"]["data"][3] = [1.0, 0.0, 0.0]
        outputs["probabilities"]["data"][7] = [0.0, 1.0, 0.0]

    _edit_manifest(package, tamper)
    reader = PackageReader.open(package)  # the files are intact: only the manifest's record changed
    differences = check_outputs(reader.manifest.golden_outputs(), answers, reader.manifest.parity_tolerance())

    assert [(d.output, d.row) for d in differences] == [("label", 5), ("probabilities", 3)]
    label, probabilities = (str(d) for d in differences)
    got = int(answers["label"][5])
    assert label.startswith(f"output 'label', row 5: expected {(got + 1) % 3}, got {got}")
    assert "1 of 10 rows differ" in label
    assert probabilities.startswith("output 'probabilities', row 3: expected [1., 0., 0.], got [")
    assert "2 of 10 rows differ" in probabilities and "atol=1e-05 + rtol=0.0001" in probabilities


def test_check_outputs_compares_labels_exactly_and_floats_within_the_tolerance():
    expected = {
        "label": np.array([0, 1, 2]),
        "probabilities": np.array([[0.9, 0.1], [0.5, 0.5], [np.nan, 1.0]]),
        "flag": np.array([True, False, True]),
        "name": np.array(["a", "b", None], dtype=object),
    }
    # What a server's JSON answer decodes to: ints as floats, NaN as null, strings as str.
    answer = {
        "label": [0.0, 1.0, 2.0],
        "probabilities": [[0.9 + 1e-6, 0.1], [0.5, 0.5 - 1e-6], [None, 1.0]],
        "flag": [True, False, True],
        "name": ["a", "b", None],
        "extra": [1, 2, 3],
    }
    tolerance = Tolerance(rtol=0, atol=1e-5)
    assert check_outputs(expected, answer, tolerance) == []

    answer |= {"probabilities": [[0.9, 0.1], [0.5, 0.6], [None, 1.0]], "label": [0, 1, 2.5]}
    problems = [str(d) for d in check_outputs(expected, answer, tolerance)]
    assert problems[0] == "output 'label', row 2: expected 2, got 2.5 (1 of 3 rows differ)"
    assert problems[1].startswith("output 'probabilities', row 1: expected [0.5, 0.5], got [0.5, 0.6]")
    assert "max abs diff 0.1 in that row" in problems[1]


def test_check_outputs_names_missing_outputs_other_shapes_and_other_kinds():
    expected = {
        "label": np.array([0, 1]),
        "probabilities": np.array([[0.9, 0.1], [0.5, 0.5]]),
        "flag": np.array([True, False]),
        "name": np.array(["a", "b"], dtype=object),
    }
    answer = {"probabilities": [0.9, 0.5], "flag": [1, 0], "name": [1, 2]}
    problems = [str(d) for d in check_outputs(expected, answer)]
    assert problems == [
        "output 'label': expected int64 with shape (2,), "
        "got no such output (the answer has probabilities, flag, name)",
        "output 'probabilities': expected shape (2, 2), got shape (2,)",
        "output 'flag': expected bool values, got int64 values",
        "output 'name': expected strings, got int64 values",
    ]
    floats_as_strings = check_outputs({"p": np.array([0.5])}, {"p": ["0.5"]})
    assert [str(d) for d in floats_as_strings] == ["output 'p': expected float64 values, got strings"]


# --- without them ----------------------------------------------------------------------------


def test_a_package_without_an_input_example_records_none_and_says_why(tmp_path, iris_classifier, iris):
    X = iris[0].head()
    signature = infer_signature(X, iris_classifier.predict(X))
    manifest = save_model(iris_classifier, tmp_path / "iris", signature=signature)

    assert manifest.golden_outputs() == {}
    assert manifest.golden_missing == NO_EXAMPLE and "no input example" in NO_EXAMPLE
    data = yaml.safe_load((tmp_path / "iris" / MANIFEST_NAME).read_text())
    assert data["golden_outputs"] == {"missing": NO_EXAMPLE}
    assert read_manifest(tmp_path / "iris").golden_missing == NO_EXAMPLE


def test_outputs_too_large_for_a_manifest_are_not_recorded_and_say_why():
    golden = record_golden({"scores": np.zeros((100, 10))}, ["scores"], max_bytes=1000)
    assert golden.arrays() == {}
    assert golden.missing is not None
    assert "more than the 1,000 a manifest keeps; save it with a smaller input_example=" in golden.missing


def test_an_old_format_manifest_without_golden_outputs_loads_and_converts(package, example):
    _edit_manifest(package, lambda data: data.pop("golden_outputs"))

    loaded = load_model(package, trust=True)
    assert loaded.manifest.golden is None
    assert loaded.manifest.golden_outputs() == {}
    assert loaded.manifest.golden_missing == NOT_RECORDED
    assert "golden_outputs" not in loaded.manifest.to_dict()  # its digest is what it was
    assert loaded.predict(example)["label"].shape == (10,)

    converted = convert_package(package, trust=True)
    native = loaded.predict(example)
    for name, answer in native.items():
        np.testing.assert_array_equal(converted.golden_outputs()[name], answer)
    assert read_manifest(package).golden == converted.golden


def test_a_malformed_golden_output_names_the_output(package):
    _edit_manifest(package, lambda data: data["golden_outputs"]["outputs"]["label"].update(shape=[11]))
    manifest = read_manifest(package)
    malformed = r"golden output 'label' is malformed: .* not the recorded \(11,\)"
    with pytest.raises(PackageError, match=malformed):
        manifest.golden_outputs()


def test_model_info_says_whether_golden_outputs_are_recorded(package):
    info = subprocess.run(
        [QUAYSIDE, "model", "info", str(package)], capture_output=True, text=True, timeout=300
    )
    assert info.returncode == 0, info.stderr
    assert re.search(
        r"\ngolden +outputs recorded for the input example \(label, probabilities\)", info.stdout
    )
