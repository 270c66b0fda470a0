"""Request bodies for both protocols, and their answers read back as arrays (the smoke test's side)."""

from __future__ import annotations

import numpy as np
import pytest

from quayside.errors import MalformedInputError
from quayside.packager.bodies import invocations_body, invocations_outputs, v2_body, v2_outputs
from quayside.packager.signature import Schema, TensorSpec


def schema(*specs: TensorSpec) -> Schema:
    return Schema(kind="tensors", specs=tuple(specs))


def test_a_v2_body_is_flat_with_its_shape_and_the_answer_is_reshaped_back():
    inputs = schema(TensorSpec("x", "float32", (-1, 2)))
    rows = {"x": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)}
    body = v2_body(rows, inputs)
    assert body == {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}]
    }
    answer = {"outputs": [{"name": "p", "datatype": "FP64", "shape": [2, 3], "data": list(range(6))}]}
    assert v2_outputs(answer)["p"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_invocations_answers_are_read_by_output_name_or_as_the_single_output():
    outputs = schema(TensorSpec("label", "int64", (-1,)), TensorSpec("probabilities", "float64", (-1, 2)))
    assert invocations_outputs({"predictions": [1, 0]}, outputs)["label"].tolist() == [1, 0]
    both = invocations_outputs({"predictions": {"label": [1], "probabilities": [[0.2, 0.8]]}}, outputs)
    assert both["probabilities"].shape == (1, 2)
    assert invocations_body({"x": np.array([[1, 2]])}, schema(TensorSpec("x", "int64", (-1, 2)))) == {
        "inputs": [[1, 2]]
    }


@pytest.mark.parametrize(
    "answer",
    [
        {"outputs": "no"},
        {"outputs": [{"name": "p", "shape": [3], "data": [1, 2]}]},
        {"outputs": [{"data": []}]},
    ],
)
def test_a_malformed_v2_answer_is_refused_with_a_message(answer):
    with pytest.raises(MalformedInputError, match="V2 response"):
        v2_outputs(answer)


def test_an_invocations_answer_without_predictions_is_refused():
    with pytest.raises(MalformedInputError, match="predictions"):
        invocations_outputs({"outputs": []}, schema(TensorSpec("y", "float32", (-1,))))
