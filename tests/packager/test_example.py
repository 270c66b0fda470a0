"""Rows sampled like the input example stay within its per-column ranges and values."""

from __future__ import annotations

import numpy as np

from quayside.packager.example import decode_example, encode_example, sample_like
from quayside.packager.signature import coerce_inputs, infer_schema


def test_samples_stay_within_each_columns_range_and_keep_dtypes(mixed_frame):
    schema = infer_schema(mixed_frame)
    example = coerce_inputs(mixed_frame.head(30), schema)
    samples = sample_like(example, schema, 1000, seed=3)
    assert all(len(v) == 1000 for v in samples.values())
    for name in ("income", "age"):
        assert samples[name].dtype == example[name].dtype
        assert example[name].min() <= samples[name].min()
        assert samples[name].max() <= example[name].max()
    assert set(samples["plan"]) <= set(example["plan"])
    assert set(samples["member"]) <= {True, False}
    # Numbers are spread out, not copies of the example's rows.
    assert len(np.unique(samples["income"])) > 900


def test_tensor_samples_respect_the_range_of_each_feature_position():
    example = {"x": np.array([[0.0, 100.0], [1.0, 200.0]], dtype=np.float32)}
    schema = infer_schema(example)
    samples = sample_like(example, schema, 500)["x"]
    assert samples.shape == (500, 2)
    assert samples[:, 0].max() <= 1.0 and samples[:, 1].min() >= 100.0


def test_an_example_survives_encoding(mixed_frame):
    schema = infer_schema(mixed_frame)
    example = coerce_inputs(mixed_frame.head(5), schema)
    decoded = decode_example(encode_example(example), schema)
    for name in schema.names:
        np.testing.assert_array_equal(decoded[name], example[name])
        assert decoded[name].dtype == example[name].dtype
