"""Saving, loading and converting model packages.

A package is written into a temporary directory beside its destination and
renamed into place, so a failed save (a parity failure, a model that cannot be
pickled) leaves nothing behind. Saving loads the written files back through the
flavor and runs the input example on them: a package that saved is a package
that loads, and what it answered is recorded as the package's golden outputs.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from quayside.errors import AlreadyExistsError, SignatureError, UntrustedPackageError, UsageError
from quayside.names import check_name
from quayside.packager.convert import ONNX_FILE, Conversion, Tolerance, convert
from quayside.packager.environment import current_environment, warn_on_python_mismatch, with_onnx
from quayside.packager.example import decode_example, encode_example
from quayside.packager.flavors import Flavor, flavor_for, get_flavor
from quayside.packager.flavors.onnx import MODEL_FILE as ONNX_MODEL_FILE
from quayside.packager.flavors.onnx import OnnxRunner
from quayside.packager.golden import NO_EXAMPLE, no_golden, record_golden
from quayside.packager.manifest import (
    Manifest,
    OnnxInfo,
    PackageReader,
    file_entry,
    write_manifest,
)
from quayside.packager.signature import (
    Arrays,
    Schema,
    Signature,
    coerce_inputs,
    infer_schema,
    match_outputs,
)

ServedRuntime = Literal["onnx", "native"]
"""What runs a loaded model: ONNX Runtime, or the flavor's own framework."""
Runtime = Literal["auto", ServedRuntime]
"""What a caller asks for: ``auto`` (ONNX Runtime when the package is ONNX-servable) or one of them."""
RUNTIMES: tuple[str, ...] = get_args(Runtime)
"""The runtime names a caller may give, ``auto`` first (the CLI checks its option against them)."""


def runtime_choices() -> str:
    """The runtime names as a message lists them: ``auto, onnx or native``."""
    return f"{', '.join(RUNTIMES[:-1])} or {RUNTIMES[-1]}"


@dataclass(frozen=True)
class LoadedModel:
    """A loaded package: ``predict`` takes a DataFrame, an array or a dict of arrays.

    ``predict`` checks the data against the signature and returns the model's
    outputs as ``{output name: array}``, in signature order.
    """

    manifest: Manifest
    runtime: ServedRuntime
    native_model: Any
    _run: Any

    @property
    def signature(self) -> Signature:
        return self.manifest.signature

    def predict(self, data: Any) -> Arrays:
        return self._run(coerce_inputs(data, self.signature.inputs))

    def run(self, inputs: Arrays) -> Arrays:
        """Run the model on inputs already checked by :func:`~quayside.packager.signature.coerce_inputs`.

        Servers validate each request once, merge several into one batch, and call this.
        """
        return self._run(inputs)


def _native_runner(flavor: Flavor, model: Any, manifest: Manifest) -> Any:
    inputs, options = manifest.signature.inputs, manifest.flavor_options

    def run(arrays: Arrays) -> Arrays:
        return flavor.predict(model, arrays, inputs, options)

    return run


def _untrusted_message(manifest: Manifest) -> str:
    hint = (
        " This package also holds a parity-checked ONNX model, which loads without trust (runtime='onnx')."
        if manifest.onnx_servable
        else ""
    )
    return (
        f"package '{manifest.name}' stores a {manifest.flavor} model as a Python pickle, and "
        "unpickling runs code from the package. Load it with trust=True (CLI: --trust) only if you "
        f"trust where it came from.{hint}"
    )


def _choose_runtime(manifest: Manifest, runtime: Runtime) -> ServedRuntime:
    if manifest.flavor == "onnx":
        return "onnx"
    if runtime == "auto":
        return "onnx" if manifest.onnx_servable or manifest.flavor == "onnx" else "native"
    if runtime == "onnx" and not (manifest.onnx_servable or manifest.flavor == "onnx"):
        raise UsageError(
            f"package '{manifest.name}' has no parity-checked ONNX model; convert it first "
            "(quayside convert PATH)"
        )
    if runtime not in get_args(ServedRuntime):
        raise UsageError(f"runtime must be {runtime_choices()}, not '{runtime}'")
    return runtime


def _onnx_file(manifest: Manifest) -> str:
    if manifest.flavor == "onnx":
        return ONNX_MODEL_FILE
    assert manifest.onnx is not None  # _choose_runtime picks onnx only when there is one
    return manifest.onnx.file


@dataclass(frozen=True)
class OnnxSessionConfig:
    """How a server sizes ONNX Runtime: intra-op threads (0 = ORT's default) and spinning."""

    intra_op_threads: int = 0
    spinning: bool = True


def load_model(
    path: str | Path,
    *,
    trust: bool = False,
    runtime: Runtime = "auto",
    session: OnnxSessionConfig = OnnxSessionConfig(),
) -> LoadedModel:
    """Load a model package after verifying every file's digest.

    ``runtime='auto'`` runs the ONNX model when the package has one that passed
    parity, and the native flavor otherwise. Flavors stored as pickles
    (sklearn, pytorch, python) run code when loaded natively and are refused
    unless ``trust=True``. ``session`` sizes the ONNX Runtime session.
    """
    reader = PackageReader.open(path)
    manifest = reader.manifest
    chosen = _choose_runtime(manifest, runtime)
    if chosen == "onnx":
        runner = OnnxRunner(
            reader.read_bytes(_onnx_file(manifest)),
            manifest.signature.inputs,
            manifest.signature.outputs,
            intra_op_threads=session.intra_op_threads,
            spinning=session.spinning,
        )
        native = runner if manifest.flavor == "onnx" else None
        return LoadedModel(manifest, "onnx", native, runner.run)
    flavor = get_flavor(manifest.flavor)
    if flavor.trust_required and not trust:
        raise UntrustedPackageError(_untrusted_message(manifest))
    if flavor.trust_required:
        warn_on_python_mismatch(manifest.environment)
    model = flavor.load(reader, manifest.flavor_options, manifest.signature)
    return LoadedModel(manifest, "native", model, _native_runner(flavor, model, manifest))


# --- saving ------------------------------------------------------------------------------


def _check_destination(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise AlreadyExistsError(f"'{path}' already exists; choose a new path for the package")


def _input_schema(
    flavor: Flavor, model: Any, signature: Signature | None, inputs: Schema | None, example: Any
) -> Schema:
    if signature is not None:
        return signature.inputs
    if inputs is not None:
        return inputs
    own = flavor.own_signature(model)
    if own is not None:
        return own.inputs
    if example is None:
        raise UsageError(
            "save_model needs input_example= (a few rows of real input) or signature=, "
            "so that the package can describe its inputs"
        )
    return infer_schema(example)


def _output_schema(outputs: Arrays, signature: Signature | None) -> Schema:
    if signature is None:
        return infer_schema(outputs, "prediction")
    try:
        return match_outputs(outputs, signature.outputs)
    except SignatureError as e:
        by_name = ", ".join(f"'{name}': ..." for name in outputs)
        raise SignatureError(
            f"the model's outputs do not match the given signature: {e.message}. Describe outputs "
            f"by these names (signature=infer_signature(X, {{{by_name}}})) or as one unnamed output "
            "that matches one of them by dtype and shape, or omit signature= and let input_example= "
            "describe them"
        ) from None


def save_model(
    model: Any,
    path: str | Path,
    *,
    signature: Signature | None = None,
    inputs: Schema | None = None,
    input_example: Any = None,
    to_onnx: bool = False,
    extra_requirements: Iterable[str] = (),
    name: str | None = None,
    flavor: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    source_run: str | None = None,
    tolerance: Tolerance = Tolerance(),
    opset: int | None = None,
) -> Manifest:
    """Save a model as a package directory at ``path`` and return its manifest.

    The flavor is detected from the model (or named with ``flavor=``). The
    signature is inferred from ``input_example`` and the model's outputs on it
    unless given. A given signature need not name the flavor's outputs: one
    unnamed output, as ``infer_signature(X, model.predict(X))`` writes it, maps
    onto the model output it matches by dtype and shape, and outputs it does not
    describe are inferred (:func:`~quayside.packager.signature.match_outputs`).
    ``inputs`` describes the inputs alone and leaves the outputs to
    inference (an importer knows the inputs from the source format, not the
    outputs of Quayside's flavor). What the saved model answers for ``input_example``
    is recorded as the package's golden outputs
    (:meth:`~quayside.packager.manifest.Manifest.golden_outputs`). With ``to_onnx=True``
    the model is also converted to ONNX and the package is ONNX-servable only if parity
    holds within ``tolerance`` (and the ONNX model answers the example as the golden
    outputs say); otherwise :class:`~quayside.errors.ParityError` is raised and nothing
    is written.
    """
    destination = Path(path)
    _check_destination(destination)
    chosen = get_flavor(flavor) if flavor else flavor_for(model)
    inputs = _input_schema(chosen, model, signature, inputs, input_example)
    example = coerce_inputs(input_example, inputs) if input_example is not None else None
    if to_onnx and example is None:
        raise UsageError("to_onnx=True needs input_example= to measure parity against the native model")
    if to_onnx and chosen.name == "onnx":
        raise UsageError("the model is already ONNX; save it without to_onnx")
    skeleton = Manifest(
        name=check_name("package", name or destination.name),
        flavor=chosen.name,
        files=(),
        # Until the saved model has run on the example, outputs are known only from the
        # graph (ONNX) or the caller; no flavor that infers outputs reads them on load.
        signature=chosen.own_signature(model)
        or Signature(inputs, signature.outputs if signature else inputs),
        environment=current_environment(chosen.requirements(model, inputs), extra_requirements),
        metadata=dict(metadata or {}),
        source_run=source_run,
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        manifest, reloaded = _write_native(staging, chosen, model, skeleton, example, signature)
        if to_onnx:
            assert example is not None
            conversion = convert(
                chosen,
                reloaded,
                manifest.flavor_options,
                manifest.signature,
                example,
                tolerance=tolerance,
                opset=opset,
                golden=manifest.golden_outputs(),
            )
            manifest = _with_conversion(staging, manifest, conversion)
        write_manifest(staging, manifest)
        if destination.exists():
            destination.rmdir()  # checked empty above
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write_native(
    root: Path,
    flavor: Flavor,
    model: Any,
    skeleton: Manifest,
    example: Arrays | None,
    signature: Signature | None,
) -> tuple[Manifest, Any]:
    """Save the native model, load it back as a user would, and complete the signature from its outputs.

    The reloaded model's answers to the example also become the package's golden outputs.
    """
    files, options = flavor.save(model, root)
    manifest = replace(skeleton, files=tuple(file_entry(root, f) for f in files), flavor_options=options)
    reloaded = flavor.load(PackageReader(root, manifest), options, manifest.signature)
    if example is None:
        return replace(manifest, golden=no_golden(NO_EXAMPLE)), reloaded
    answers = flavor.predict(reloaded, example, manifest.signature.inputs, options)
    # An ONNX graph's outputs are its own; other flavors' are described from what they answered.
    outputs = manifest.signature.outputs if flavor.name == "onnx" else _output_schema(answers, signature)
    manifest = replace(
        manifest,
        signature=Signature(manifest.signature.inputs, outputs),
        input_example=encode_example(example),
        golden=record_golden(answers, outputs.names),
    )
    return manifest, reloaded


def _with_conversion(root: Path, manifest: Manifest, conversion: Conversion) -> Manifest:
    """Write the ONNX file (temporary name, then rename) and list it in the manifest."""
    staged = root / f".{ONNX_FILE}.tmp"
    staged.write_bytes(conversion.model_bytes)
    staged.replace(root / ONNX_FILE)
    info = OnnxInfo(ONNX_FILE, conversion.opset, conversion.parity.passed, conversion.parity.to_dict())
    return replace(
        manifest.with_files([file_entry(root, ONNX_FILE)]),
        onnx=info,
        environment=with_onnx(manifest.environment),
    )


def convert_package(
    path: str | Path,
    *,
    trust: bool = False,
    tolerance: Tolerance = Tolerance(),
    opset: int | None = None,
) -> Manifest:
    """Convert a saved package's native model to ONNX in place, if parity holds.

    The native model is loaded (so pickled flavors need ``trust=True``), converted,
    and checked on the stored input example plus sampled rows, and against the
    golden outputs on the example. The golden outputs stay what the native model
    answered when the package was saved; a package written before they were
    recorded gets the native model's answers now. On success the ONNX file is added
    and the manifest rewritten atomically; on failure the package is left as it was.
    """
    root = Path(path)
    loaded = load_model(root, trust=trust, runtime="native")
    manifest = loaded.manifest
    if manifest.flavor == "onnx":
        raise UsageError(f"package '{manifest.name}' is already an ONNX model")
    if manifest.input_example is None:
        raise UsageError(
            f"package '{manifest.name}' has no input example, which the parity check needs; "
            "save it again with input_example="
        )
    flavor = get_flavor(manifest.flavor)
    example = decode_example(manifest.input_example, manifest.signature.inputs)
    if manifest.golden is None:
        answers = loaded.run(example)
        manifest = replace(manifest, golden=record_golden(answers, manifest.signature.outputs.names))
    conversion = convert(
        flavor,
        loaded.native_model,
        manifest.flavor_options,
        manifest.signature,
        example,
        tolerance=tolerance,
        opset=opset,
        golden=manifest.golden_outputs(),
    )
    updated = _with_conversion(root, manifest, conversion)
    write_manifest(root, updated)
    return updated
