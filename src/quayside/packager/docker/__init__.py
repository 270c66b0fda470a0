"""Container images of model packages.

``context`` renders a build context (Dockerfile, model package, wheelhouse) and
does no engine I/O; ``wheelhouse`` resolves the image's wheels on the host;
``build`` and ``containers`` talk to a Docker engine through the ``docker`` SDK.
Only the CLI imports this package.
"""
