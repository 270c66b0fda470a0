"""Projects: a ``quayside.yaml`` with typed entry points, run as a subprocess that logs into a tracked run.

    name: churn
    environment:
      requirements: ["scikit-learn>=1.4"]
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.5}
          data: {type: path}            # no default: required
          model: {type: str, default: rf}
        command: "python train.py --alpha {alpha} --data {data} --model {model}"

The command is split into words as a shell would, each ``{param}`` is replaced
inside its word, and it runs without a shell: a parameter value is always exactly
one argument, whatever characters it holds. ``python`` on the command line is the
environment's interpreter (this one, or the project's venv with ``--env venv``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from quayside.errors import MalformedInputError, NotFoundError, QuaysideError, UsageError
from quayside.tracking.client import Client
from quayside.tracking.context import git_state, run_context
from quayside.tracking.entities import Run, RunStatus

PROJECT_FILE = "quayside.yaml"
PARAM_TYPES = ("int", "float", "str", "path")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
EnvMode = Literal["local", "venv"]
VENV_READY_MARKER = ".quayside-ready"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "str"
    default: Any = None
    required: bool = True

    def convert(self, raw: Any, base: Path) -> Any:
        """The value as its declared type, or a UsageError naming the parameter."""
        text = str(raw)
        try:
            if self.type == "int":
                return int(text)
            if self.type == "float":
                return float(text)
        except ValueError:
            raise UsageError(
                f"parameter '{self.name}' must be {_article(self.type)} {self.type}, got '{text}'"
            ) from None
        if self.type == "path":
            return str((base / Path(text).expanduser()).resolve())
        return text


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    def resolve_parameters(self, given: Mapping[str, str], base: Path) -> dict[str, Any]:
        """Given values (strings) checked against the declared parameters, defaults filled in."""
        unknown = sorted(set(given) - set(self.parameters))
        if unknown:
            known = ", ".join(sorted(self.parameters)) or "none"
            raise UsageError(
                f"entry point '{self.name}' has no parameter {', '.join(repr(u) for u in unknown)} (known: {known})"
            )
        values: dict[str, Any] = {}
        for name, parameter in self.parameters.items():
            if name in given:
                values[name] = parameter.convert(given[name], base)
            elif not parameter.required:
                values[name] = (
                    None if parameter.default is None else parameter.convert(parameter.default, base)
                )
            else:
                raise UsageError(
                    f"entry point '{self.name}' needs parameter '{name}' ({parameter.type}): pass -P {name}=..."
                )
        return values

    def argv(self, values: Mapping[str, Any]) -> list[str]:
        """The command's arguments with each placeholder replaced inside its own word."""
        words = shlex.split(self.command)
        return [
            PLACEHOLDER.sub(lambda m: "" if values[m.group(1)] is None else str(values[m.group(1)]), w)
            for w in words
        ]


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    requirements: tuple[str, ...]
    entry_points: Mapping[str, EntryPoint]

    def entry_point(self, name: str) -> EntryPoint:
        try:
            return self.entry_points[name]
        except KeyError:
            known = ", ".join(sorted(self.entry_points))
            raise NotFoundError(
                f"project '{self.name}' has no entry point '{name}' (it has: {known})"
            ) from None


def _article(type_name: str) -> str:
    return "an" if type_name[0] in "aeiou" else "a"


def _parameter(entry: str, name: str, spec: Any) -> Parameter:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise MalformedInputError(
            f"{PROJECT_FILE}: parameter '{name}' of '{entry}' must be a type or a mapping"
        )
    type_name = str(spec.get("type", "str"))
    if type_name not in PARAM_TYPES:
        raise MalformedInputError(
            f"{PROJECT_FILE}: parameter '{name}' of '{entry}' has type '{type_name}'; use one of {', '.join(PARAM_TYPES)}"
        )
    has_default = "default" in spec
    required = bool(spec.get("required", not has_default))
    parameter = Parameter(name, type_name, spec.get("default"), required)
    if has_default and spec.get("default") is not None:
        try:
            parameter.convert(spec["default"], Path.cwd())
        except UsageError as e:
            raise MalformedInputError(f"{PROJECT_FILE}: default of {e.message}") from None
    return parameter


def _entry_point(name: str, spec: Any) -> EntryPoint:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("command"), str):
        raise MalformedInputError(f"{PROJECT_FILE}: entry point '{name}' needs a 'command' string")
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise MalformedInputError(f"{PROJECT_FILE}: 'parameters' of entry point '{name}' must be a mapping")
    entry = EntryPoint(
        name, spec["command"], {str(k): _parameter(name, str(k), v) for k, v in parameters.items()}
    )
    try:
        used = set(PLACEHOLDER.findall(entry.command))
        shlex.split(entry.command)
    except ValueError as e:
        raise MalformedInputError(
            f"{PROJECT_FILE}: command of entry point '{name}' cannot be split: {e}"
        ) from None
    undeclared = sorted(used - set(entry.parameters))
    if undeclared:
        raise MalformedInputError(
            f"{PROJECT_FILE}: command of entry point '{name}' uses {{{undeclared[0]}}}, which is not a declared parameter"
        )
    return entry


def load_project(path: str | Path) -> Project:
    """Read and check a project directory's ``quayside.yaml``."""
    root = Path(path).resolve()
    file = root / PROJECT_FILE if root.is_dir() else root
    if not file.is_file():
        raise NotFoundError(f"no project at '{path}': {PROJECT_FILE} is missing")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise MalformedInputError(f"{file} is not valid YAML: {e}") from None
    if (
        not isinstance(data, Mapping)
        or not isinstance(data.get("entry_points"), Mapping)
        or not data["entry_points"]
    ):
        raise MalformedInputError(f"{file} is not a project file: it needs an 'entry_points' mapping")
    environment = data.get("environment") or {}
    requirements = environment.get("requirements", []) if isinstance(environment, Mapping) else None
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise MalformedInputError(
            f"{file}: 'environment.requirements' must be a list of pip requirement strings"
        )
    return Project(
        name=str(data.get("name") or file.parent.name),
        root=file.parent,
        requirements=tuple(requirements),
        entry_points={str(k): _entry_point(str(k), v) for k, v in data["entry_points"].items()},
    )


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """``["alpha=0.5", "data=x.csv"]`` as a mapping; a word without ``=`` is an error."""
    values: dict[str, str] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise UsageError(f"parameter '{assignment}' must look like key=value")
        values[key.strip()] = value
    return values


# --- environments ------------------------------------------------------------------------------


def project_venv(requirements: Sequence[str], envs_dir: Path) -> Path:
    """A venv with the requirements installed, shared by projects that list the same ones; its bin dir."""
    key = hashlib.sha256("\n".join([platform.python_version(), *sorted(requirements)]).encode()).hexdigest()[
        :16
    ]
    venv = envs_dir / key
    envs_dir.mkdir(parents=True, exist_ok=True)
    with (envs_dir / f"{key}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / VENV_READY_MARKER).is_file():
            shutil.rmtree(venv, ignore_errors=True)
            _build_venv(venv, requirements)
            (venv / VENV_READY_MARKER).write_text("\n".join(requirements) + "\n")
    return venv / "bin"


def _build_venv(venv: Path, requirements: Sequence[str]) -> None:
    create = [sys.executable, "-m", "venv", str(venv)]
    if not requirements:
        create.append("--without-pip")
    _check_call(create, "create the project's virtual environment")
    if requirements:
        install = [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            *requirements,
        ]
        _check_call(install, "install the project's requirements")


def _check_call(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise QuaysideError(f"could not {what}: {detail[-1] if detail else f'exit code {result.returncode}'}")


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectRun:
    run: Run
    exit_code: int
    argv: tuple[str, ...]


def run_project(
    client: Client,
    project: Project,
    entry_name: str,
    given: Mapping[str, str],
    *,
    env_mode: EnvMode = "local",
    experiment: str | None = None,
    run_name: str | None = None,
    base_env: Mapping[str, str],
    envs_dir: Path,
    on_start: Any = None,
) -> ProjectRun:
    """Validate, record a run with its params, run the entry point (output streams through) and record the end.

    The subprocess gets ``QUAYSIDE_RUN_ID`` so that its own ``quayside`` logging lands in
    this run. The run ends FINISHED on exit code 0, FAILED otherwise, KILLED on Ctrl-C.
    """
    entry = project.entry_point(entry_name)
    values = entry.resolve_parameters(given, Path.cwd())
    argv = entry.argv(values)
    if env_mode not in ("local", "venv"):
        raise UsageError(f"--env must be local or venv, not '{env_mode}'")
    bin_dir = (
        project_venv(project.requirements, envs_dir) if env_mode == "venv" else Path(sys.executable).parent
    )
    tags = run_context() | git_state(project.root)
    tags |= {"quayside.project": project.name, "quayside.entry_point": entry.name, "quayside.env": env_mode}
    tags["quayside.command"] = shlex.join(argv)
    run = client.create_run(experiment, run_name or f"{project.name}-{entry.name}", tags)
    client.log_params(run.id, {k: v for k, v in values.items() if v is not None})
    env = dict(base_env) | {
        "QUAYSIDE_RUN_ID": run.id,
        "PATH": f"{bin_dir}{os.pathsep}{base_env.get('PATH', '')}",
    }
    if env_mode == "venv":
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
    if on_start is not None:
        on_start(run, argv)
    try:
        process = subprocess.Popen(argv, cwd=project.root, env=env)
    except OSError as e:
        client.set_terminated(run.id, RunStatus.FAILED)
        raise UsageError(
            f"could not start '{argv[0]}' for entry point '{entry.name}': {e.strerror}"
        ) from None
    try:
        exit_code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        client.set_terminated(run.id, RunStatus.KILLED, exit_code=process.returncode)
        raise
    status = RunStatus.FINISHED if exit_code == 0 else RunStatus.FAILED
    return ProjectRun(client.set_terminated(run.id, status, exit_code=exit_code), exit_code, tuple(argv))
