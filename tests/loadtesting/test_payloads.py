"""Payloads generated from signatures of several shapes are valid: a correct server answers every one."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from quayside.loadtesting.payloads import build_payloads, placeholder_example, schema_from_v2_metadata
from quayside.packager.example import decode_example
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Schema, TensorSpec


def _inputs(package):
    manifest = PackageReader.open(package).manifest
    schema = manifest.signature.inputs
    return schema, decode_example(manifest.input_example, schema)


def _post_all(server_url, payloads):
    statuses = []
    with httpx.Client(base_url=server_url, timeout=10) as client:
        for body in payloads.bodies:
            response = client.post(
                payloads.path, content=body, headers={"Content-Type": payloads.content_type}
            )
            statuses.append((response.status_code, response.text[:200]))
    return statuses


@pytest.mark.parametrize("protocol", ["v2", "invocations"])
@pytest.mark.parametrize("rows", [1, 7])
def test_mixed_table_payloads_get_200_from_a_correct_server(
    mixed_table_package, mixed_table_server, protocol, rows
):
    schema, example = _inputs(mixed_table_package)
    payloads = build_payloads(schema, example, protocol=protocol, model_name="members", rows=rows, count=40)
    statuses = _post_all(mixed_table_server.url, payloads)
    assert [s for s in statuses if s[0] != 200] == []


@pytest.mark.parametrize("protocol", ["v2", "invocations"])
def test_tensor_payloads_get_200_from_a_correct_server(tensor_input_package, tensor_input_server, protocol):
    schema, example = _inputs(tensor_input_package)
    payloads = build_payloads(schema, example, protocol=protocol, model_name="diabetes", rows=4, count=40)
    statuses = _post_all(tensor_input_server.url, payloads)
    assert [s for s in statuses if s[0] != 200] == []


def test_rows_stay_within_the_examples_ranges_and_types(mixed_table_package):
    schema, example = _inputs(mixed_table_package)
    payloads = build_payloads(schema, example, model_name="members", rows=50, count=5)
    for body in payloads.bodies:
        inputs = {i["name"]: i for i in json.loads(body)["inputs"]}
        assert {n: i["datatype"] for n, i in inputs.items()} == {
            "age": "FP32",
            "visits": "INT64",
            "plan": "BYTES",
            "active": "BOOL",
        }
        assert all(i["shape"] == [50] for i in inputs.values())
        age = np.array(inputs["age"]["data"])
        assert age.min() >= example["age"].min() - 1e-3 and age.max() <= example["age"].max() + 1e-3
        assert all(isinstance(v, int) for v in inputs["visits"]["data"])
        assert set(inputs["plan"]["data"]) <= set(example["plan"].tolist())
        assert all(isinstance(v, bool) for v in inputs["active"]["data"])


def test_bodies_differ_so_the_server_sees_varied_rows(tensor_input_package):
    schema, example = _inputs(tensor_input_package)
    payloads = build_payloads(schema, example, model_name="diabetes", count=10)
    assert len(set(payloads.bodies)) == 10


def test_v2_metadata_gives_a_schema_and_placeholders_fit_it(tensor_input_server, mixed_table_server):
    for server, name in ((tensor_input_server, "diabetes"), (mixed_table_server, "members")):
        schema = schema_from_v2_metadata(httpx.get(f"{server.url}/v2/models/{name}").json())
        payloads = build_payloads(schema, None, model_name=name, rows=3, count=5)
        assert len(payloads.bodies) == 5
    tensors = Schema("tensors", (TensorSpec("x", "float32", (-1, 10)), TensorSpec("mask", "bool", (-1, 10))))
    example = placeholder_example(tensors)
    assert example["x"].shape == (2, 10) and example["mask"].dtype == np.bool_
