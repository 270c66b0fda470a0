"""The model registry: named models, numbered immutable versions, stages, aliases and an audit log.

Versions are copies of model packages in the artifact store; the registry refers to
the runs that produced them by id only (it never imports tracking). Model URIs
(``models:/name/3``, ``models:/name@champion``, ``models:/name/production``) are
resolved in :mod:`quayside.registry.uris`.
"""
