"""The environment a package records: this Python, and requirements pinned to installed versions."""

from __future__ import annotations

import platform
from importlib import metadata

import pytest

from quayside import save_model
from quayside.errors import UsageError
from quayside.packager.environment import pin, pin_all


def test_a_bare_name_is_pinned_to_the_installed_version():
    assert pin("numpy") == f"numpy=={metadata.version('numpy')}"
    assert pin("PyYAML") == f"PyYAML=={metadata.version('PyYAML')}"


def test_a_requirement_with_a_specifier_is_kept_as_given():
    assert pin("requests>=2.0,<3") == "requests<3,>=2.0"


def test_a_bare_name_that_is_not_installed_cannot_be_pinned():
    with pytest.raises(UsageError, match="'surely-not-installed-pkg' is not installed"):
        pin("surely-not-installed-pkg")


def test_an_invalid_requirement_is_refused():
    with pytest.raises(UsageError, match="is not a valid pip requirement"):
        pin("numpy >>> 1")


def test_repeats_of_one_distribution_keep_the_first():
    assert pin_all(["numpy", "NumPy>=1"]) == (f"numpy=={metadata.version('numpy')}",)


def test_save_model_records_python_flavor_requirements_and_extras(tmp_path, diabetes_regressor, diabetes):
    manifest = save_model(
        diabetes_regressor,
        tmp_path / "m",
        input_example=diabetes[0][:5],
        extra_requirements=["pyyaml", "scipy>=1"],
    )
    env = manifest.environment
    assert env.python == platform.python_version()
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in env.requirements
    assert f"pyyaml=={metadata.version('pyyaml')}" in env.requirements
    assert "scipy>=1" in env.requirements
    assert env.onnx_requirements == ()
