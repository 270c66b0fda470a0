"""A ``torch.export`` program (MLflow's default ``pt2`` PyTorch format) as a module the pytorch flavor can save.

``ExportedProgram.module()`` cannot be pickled (it holds local lambdas), and the
pytorch flavor saves whole modules with ``torch.save``. :class:`ExportedProgramModule`
keeps the ``.pt2`` archive's bytes as its pickled state and loads them back with
``torch.export.load`` when unpickled, so the package holds MLflow's own archive and
every load runs the program MLflow saved. It lives in a module of its own because
``torch.load`` finds the class by this module's name, and importing it imports torch:
only the MLflow importer and the loading of such a package do.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch


class ExportedProgramModule(torch.nn.Module):
    """Runs the program in a ``.pt2`` archive; pickles as the archive's bytes."""

    def __init__(self, archive: bytes) -> None:
        super().__init__()
        self.archive = archive
        self.program = torch.export.load(io.BytesIO(archive)).module()
        # The program's own forward, with its parameter names: torch.onnx.export matches the
        # flavor's per-input dynamic shapes against forward's signature, which *inputs would hide.
        self.forward = self.program.forward

    @classmethod
    def from_file(cls, path: Path) -> ExportedProgramModule:
        return cls(path.read_bytes())

    def train(self, mode: bool = True) -> ExportedProgramModule:
        # An exported program's mode was fixed when it was exported, and its module refuses
        # train()/eval(); the flavor's eval() after loading must not reach it.
        self.training = mode
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {"archive": self.archive}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["archive"])
