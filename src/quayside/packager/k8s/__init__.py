"""Kubernetes manifests of a model deployment.

``render`` returns the manifests (Deployment, Service, PodDisruptionBudget and an
optional HorizontalPodAutoscaler; a canary Deployment beside the stable one) as
plain objects, testable without a cluster; ``apply`` talks to a cluster through
the official ``kubernetes`` client. Only the CLI imports this package.
"""
