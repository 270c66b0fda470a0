"""The label and annotation keys Quayside writes on images, containers and Kubernetes objects.

Written by the renderers (``docker.context``, ``docker.containers``, ``k8s.render``) and
read back by what finds a model by them (``quayside deployments``, the image cache, the
canary rollout), so each key is spelt here once, in full, to be found by the text that
``docker inspect`` or ``kubectl get -o yaml`` shows. Image and container labels follow
the OCI convention of reverse-DNS keys; Kubernetes labels and annotations its prefixes.
"""

from __future__ import annotations

MODEL_NAME_LABEL = "io.quayside.model.name"
MODEL_VERSION_LABEL = "io.quayside.model.version"
MODEL_DIGEST_LABEL = "io.quayside.model.digest"
"""The model package's digest: an image already built for it is reused."""
MODEL_FLAVOR_LABEL = "io.quayside.model.flavor"
MODEL_RUNTIME_LABEL = "io.quayside.model.runtime"
MODEL_URI_LABEL = "io.quayside.model.uri"
MODEL_SIGNATURE_LABEL = "io.quayside.model.signature"
QUAYSIDE_VERSION_LABEL = "io.quayside.version"
"""The Quayside version that rendered the image."""
DEPLOYMENT_LABEL = "io.quayside.deployment"
"""On a container: the Docker deployment it belongs to."""
DEPLOYMENT_PORT_LABEL = "io.quayside.deployment.port"
SMOKE_LABEL = "io.quayside.smoke"
"""On a container: started by ``quayside build``'s smoke test (removed when it ends)."""

KUBE_MODEL_LABEL = "quayside.io/model"
KUBE_MODEL_VERSION_LABEL = "quayside.io/model-version"
KUBE_TRACK_LABEL = "quayside.io/track"
"""``stable`` or ``canary``: which of a model's Deployments a pod belongs to."""
KUBE_MODEL_DIGEST_ANNOTATION = "quayside.io/model-digest"
"""Annotations, not labels: a label value stops at 63 characters."""
KUBE_IMAGE_ANNOTATION = "quayside.io/image"
