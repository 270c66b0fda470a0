"""Settings, read once from ``QUAYSIDE_*`` environment variables at the edge.

The CLI and ``create_app`` build one :class:`Settings` and pass it down;
nothing deeper in the code reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from quayside.errors import UsageError


def _default_home() -> Path:
    return Path.home() / ".quayside"


class Settings(BaseSettings):
    """Quayside configuration; every field is ``QUAYSIDE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="QUAYSIDE_", frozen=True)

    home: Path = Field(default_factory=_default_home)
    """Where local state lives: the SQLite database and the artifact root. Default ``~/.quayside``."""

    parity_rtol: float = 1e-4
    """Relative tolerance an ONNX conversion must meet against the native model."""

    parity_atol: float = 1e-5
    """Absolute tolerance an ONNX conversion must meet against the native model."""

    parity_samples: int = 1000
    """Rows sampled within the input example's ranges for the parity check."""

    onnx_opset: int | None = None
    """ONNX opset to convert to; ``None`` lets each converter pick its newest supported."""

    debug: bool = False
    """Show full tracebacks in the CLI instead of one ``error:`` line."""


def load_settings() -> Settings:
    """Read the settings from the environment, naming the variable when one is invalid."""
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(
            f"QUAYSIDE_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in e.errors()
        )
        raise UsageError(f"invalid setting: {problems}") from None
