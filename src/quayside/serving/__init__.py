"""Model serving: FastAPI + ONNX Runtime, Open Inference Protocol V2 and MLflow ``/invocations``.

Imports the packager and nothing else of Quayside; never a database, container
or load-test library (the serving image installs only what serving runs).
"""

from quayside.serving.options import ServeOptions

__all__ = ["ServeOptions"]
