"""MLflow's model-version stages as Quayside's and back, and what ``archive_existing_versions`` becomes.

=============  ==============
MLflow         Quayside
=============  ==============
``None``       ``candidate``
``Staging``    ``staging``
``Production`` ``production``
``Archived``   ``archived``
=============  ==============

MLflow's names are read in any case (as MLflow's server does) and always written as above.

Moves are Quayside's, whoever asks: the registry's transitions table
(:mod:`quayside.registry.stages`) and its promotion policy apply to MLflow's
``transition-stage`` as to ``quayside registry transition``. So a version goes
``None`` → ``Staging`` → ``Production``, never straight from ``None`` to ``Production``
(MLflow allows that; Quayside answers which moves are open), and entering a protected
stage needs a passing load test (``quayside promote``).

``archive_existing_versions`` (MLflow: archive the other versions in the target stage):

- into ``Production``, ``true`` archives the production version(s) — Quayside's default;
- into ``Production``, ``false`` (MLflow's default) keeps them only where the model allows
  several production versions; a model with one production version (the default) archives
  its current one, since it cannot hold two;
- into any other stage, ``false`` is the only behaviour Quayside has (a stage other than
  production holds any number of versions); ``true`` is refused with the versions to
  archive one by one, rather than ignored.
"""

from __future__ import annotations

from quayside.errors import UsageError
from quayside.registry.stages import Stage

MLFLOW_STAGES: dict[str, Stage] = {
    "None": Stage.CANDIDATE,
    "Staging": Stage.STAGING,
    "Production": Stage.PRODUCTION,
    "Archived": Stage.ARCHIVED,
}
"""MLflow's stage name (as MLflow writes it) to Quayside's stage."""
_BY_FOLDED = {name.lower(): stage for name, stage in MLFLOW_STAGES.items()}
_TO_MLFLOW = {stage: name for name, stage in MLFLOW_STAGES.items()}


def to_quayside(mlflow_stage: str) -> Stage:
    """Quayside's stage for MLflow's ``None``/``Staging``/``Production``/``Archived`` (any case)."""
    stage = _BY_FOLDED.get(str(mlflow_stage).strip().lower())
    if stage is None:
        raise UsageError(
            f"Invalid Model Version stage: {str(mlflow_stage)[:100]}. "
            f"Value must be one of {', '.join(MLFLOW_STAGES)}."
        )
    return stage


def to_mlflow(stage: str) -> str:
    """MLflow's name for a Quayside stage (``candidate`` is MLflow's ``None``)."""
    return _TO_MLFLOW[Stage(stage)]


def keep_previous(target: Stage, archive_existing_versions: bool, *, allow_multiple_production: bool) -> bool:
    """Quayside's ``keep_previous`` for MLflow's ``archive_existing_versions`` (see the module docstring)."""
    if target is Stage.PRODUCTION:
        return not archive_existing_versions and allow_multiple_production
    if archive_existing_versions:
        raise UsageError(
            f"archive_existing_versions is supported for transitions to Production only: Quayside "
            f"keeps any number of versions in {to_mlflow(target)}; archive the others one by one "
            "(transition each to Archived)"
        )
    return False
