"""Signature inference, serialisation, and the strict checks every input goes through."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quayside import Signature, infer_signature
from quayside.errors import SignatureError
from quayside.packager.signature import Schema, TensorSpec, coerce_inputs, infer_schema, match_outputs


def test_ndarray_becomes_one_tensor_with_a_variable_batch_dimension():
    signature = infer_signature(np.zeros((5, 3, 2), dtype=np.float32), np.zeros(5, dtype=np.int64))
    assert signature.inputs == Schema("tensors", (TensorSpec("input", "float32", (-1, 3, 2)),))
    assert signature.outputs == Schema("tensors", (TensorSpec("output", "int64", (-1,)),))


def test_dataframe_with_int_float_bool_and_string_columns_becomes_a_typed_table(mixed_frame):
    schema = infer_schema(mixed_frame)
    assert schema.kind == "table"
    assert [(s.name, s.dtype) for s in schema.specs] == [
        ("income", "float64"),
        ("age", "int64"),
        ("member", "bool"),
        ("plan", "string"),
    ]
    assert all(s.shape == (-1,) and not s.allow_nan for s in schema.specs)


def test_dataframe_columns_with_missing_values_allow_nan():
    frame = pd.DataFrame({"x": [1.0, np.nan], "s": ["a", None], "n": pd.array([1, None], dtype="Int64")})
    schema = infer_schema(frame)
    assert [(s.name, s.dtype, s.allow_nan) for s in schema.specs] == [
        ("x", "float64", True),
        ("s", "string", True),
        ("n", "float64", True),
    ]


def test_categorical_column_is_described_by_its_values():
    frame = pd.DataFrame({"c": pd.Categorical(["a", "b", "a"])})
    assert infer_schema(frame).specs == (TensorSpec("c", "string"),)


def test_dict_of_arrays_becomes_named_tensors_in_order():
    signature = infer_signature(
        {"image": np.zeros((2, 8, 8), np.uint8), "mask": np.ones((2, 4), bool)},
        {"scores": np.zeros((2, 10), np.float32), "label": np.array(["a", "b"])},
    )
    assert signature.inputs.specs == (
        TensorSpec("image", "uint8", (-1, 8, 8)),
        TensorSpec("mask", "bool", (-1, 4)),
    )
    assert signature.outputs.specs == (
        TensorSpec("scores", "float32", (-1, 10)),
        TensorSpec("label", "string", (-1,)),
    )


def test_signature_survives_a_dict_round_trip(mixed_frame):
    signature = infer_signature(mixed_frame, {"p": np.zeros((3, 2))})
    assert Signature.from_dict(signature.to_dict()) == signature


@pytest.mark.parametrize(
    "data, message",
    [
        (object(), "cannot infer a schema from object"),
        ({}, "empty dict"),
        (pd.DataFrame({"o": [{"a": 1}, {"b": 2}]}), "holds Python objects of type dict"),
        (np.array(3.0), "is a scalar"),
    ],
)
def test_inference_refuses_what_a_signature_cannot_describe(data, message):
    with pytest.raises(SignatureError, match=message):
        infer_schema(data)


TABLE = Schema(
    "table",
    (TensorSpec("age", "int64"), TensorSpec("income", "float32"), TensorSpec("plan", "string")),
)


def test_coerce_accepts_a_dataframe_and_casts_to_the_signature_dtypes():
    frame = pd.DataFrame({"age": np.array([30, 40], np.int32), "income": [1.5, 2.5], "plan": ["a", "b"]})
    arrays = coerce_inputs(frame, TABLE)
    assert list(arrays) == ["age", "income", "plan"]
    assert arrays["age"].dtype == np.int64
    assert arrays["income"].dtype == np.float32
    assert arrays["plan"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"age": [1], "income": [1.0]}, "missing column 'plan'"),
        ({"age": [1], "income": [1.0], "plan": ["a"], "zip": [1]}, "unexpected column 'zip'"),
        ({"age": [1.5], "income": [1.0], "plan": ["a"]}, "'age': expected int64, got float64"),
        ({"age": [1], "income": ["x"], "plan": ["a"]}, "'income': expected float32, got strings"),
        ({"age": [1], "income": [1.0], "plan": [3]}, "'plan': expected strings, got int64"),
        ({"age": [1], "income": [np.nan], "plan": ["a"]}, "'income': NaN or infinity at row 0"),
        ({"age": [1], "income": [1.0, np.inf], "plan": ["a", "b"]}, "NaN or infinity at row 1"),
        ({"age": [1], "income": [None], "plan": ["a"]}, "NaN or infinity at row 0"),
        ({"age": [1], "income": [1.0], "plan": [None]}, "'plan': missing value"),
        ({"age": [1, 2], "income": [1.0], "plan": ["a"]}, "different numbers of rows"),
        (
            {"age": [[1]], "income": [1.0], "plan": ["a"]},
            r"'age': expected int64 with shape \(-1,\), got shape \(1, 1\)",
        ),
    ],
)
def test_coerce_names_the_input_and_the_problem(data, message):
    with pytest.raises(SignatureError, match=message):
        coerce_inputs(data, TABLE)


def test_coerce_refuses_more_rows_than_the_limit():
    data = {"age": [1, 2, 3], "income": [1.0, 2.0, 3.0], "plan": ["a", "b", "c"]}
    with pytest.raises(SignatureError, match="3 rows is more than the limit of 2"):
        coerce_inputs(data, TABLE, max_rows=2)


def test_coerce_refuses_integers_that_do_not_fit_the_dtype():
    schema = Schema("tensors", (TensorSpec("x", "int8", (-1,)),))
    with pytest.raises(SignatureError, match="outside the range of int8"):
        coerce_inputs({"x": [1, 300]}, schema)


def test_coerce_checks_fixed_dimensions_of_tensors():
    schema = Schema("tensors", (TensorSpec("x", "float32", (-1, 3)),))
    assert coerce_inputs(np.ones((4, 3)), schema)["x"].shape == (4, 3)
    with pytest.raises(SignatureError, match=r"expected float32 with shape \(-1, 3\), got shape \(4, 2\)"):
        coerce_inputs(np.ones((4, 2)), schema)


def test_a_plain_array_fills_a_table_by_column_position():
    schema = Schema("table", (TensorSpec("a", "float64"), TensorSpec("b", "float64")))
    arrays = coerce_inputs(np.array([[1.0, 2.0], [3.0, 4.0]]), schema)
    assert arrays["b"].tolist() == [2.0, 4.0]
    with pytest.raises(SignatureError, match="expected a table of 2 columns"):
        coerce_inputs(np.ones((2, 3)), schema)


def test_several_tensor_inputs_need_a_dict():
    schema = Schema("tensors", (TensorSpec("a", "float32", (-1,)), TensorSpec("b", "float32", (-1,))))
    with pytest.raises(SignatureError, match="pass a dict of arrays"):
        coerce_inputs(np.ones(3), schema)


def test_schemas_refuse_duplicate_names_and_unknown_dtypes():
    with pytest.raises(SignatureError, match="duplicate names"):
        Schema("tensors", (TensorSpec("a", "float32"), TensorSpec("a", "int64")))
    with pytest.raises(SignatureError, match="unknown dtype 'float128'"):
        TensorSpec("a", "float128")


def test_mixed_json_like_values_are_range_checked_too():
    schema = Schema("tensors", (TensorSpec("x", "int8", (-1,)),))
    with pytest.raises(SignatureError, match="outside the range of int8"):
        coerce_inputs({"x": np.array([True, 300], dtype=object)}, schema)
    with pytest.raises(SignatureError, match="'x': expected int8, got null"):
        coerce_inputs({"x": np.array([1, None], dtype=object)}, schema)


def test_the_dtype_tables_onnx_columns_are_onnxs_own_names_and_numbers():
    onnx = pytest.importorskip("onnx")
    from quayside.packager.signature import DTYPES

    for dtype in DTYPES.values():
        name = onnx.TensorProto.DataType.Name(dtype.onnx_elem_type)
        assert dtype.onnx == f"tensor({name.lower()})", dtype.name
        assert onnx.helper.tensor_dtype_to_np_dtype(dtype.onnx_elem_type) == dtype.numpy, dtype.name


def _classifier_outputs(labels_dtype=np.int64) -> dict[str, np.ndarray]:
    return {
        "label": np.array([0, 2, 1], dtype=labels_dtype),
        "probabilities": np.full((3, 3), 1 / 3),
    }


def test_an_unnamed_output_takes_the_name_and_dtype_of_the_output_it_matches():
    given = infer_signature(np.zeros((3, 4)), np.array([0, 2, 1], dtype=np.int32)).outputs
    assert match_outputs(_classifier_outputs(np.int64), given) == Schema(
        "tensors",
        (TensorSpec("label", "int64", (-1,)), TensorSpec("probabilities", "float64", (-1, 3))),
    )


def test_named_outputs_come_back_in_the_models_order():
    given = infer_signature(np.zeros((3, 4)), dict(reversed(_classifier_outputs().items()))).outputs
    assert match_outputs(_classifier_outputs(), given).names == ["label", "probabilities"]


def test_an_unnamed_output_matching_nothing_lists_what_the_model_produces():
    given = infer_signature(np.zeros((3, 4)), np.zeros((3, 2), dtype=np.float32)).outputs
    with pytest.raises(SignatureError) as raised:
        match_outputs(_classifier_outputs(), given)
    assert raised.value.message == (
        "output 'output' (float32 with shape (-1, 2)) matches none of the model's outputs by dtype and "
        "shape; the model produces label (int64 with shape (-1,)), probabilities (float64 with shape (-1, 3))"
    )
