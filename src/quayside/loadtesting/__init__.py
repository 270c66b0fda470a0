"""Locust load tests generated from a signature, and their reports.

``payloads`` turns a signature and input example into request bodies, ``users``
makes a Locust user class of them, ``runner`` drives Locust as a library (and
measures its own CPU use), ``distributed`` and ``worker`` run Locust's own master here
and worker processes beside it (``--workers N``), and ``report`` writes the result as
JSON and offline HTML, marking a run whose generator saturated a core. The SLO
grammar is :mod:`quayside.slo`, shared with the registry, which judges stored
reports itself.
``grpc_bodies`` and ``grpc_users`` do the same for gRPC (``ModelInfer`` with raw
contents, from :mod:`quayside.oip`'s messages). Reaches servers over the network
only (HTTP or gRPC), never by importing :mod:`quayside.serving`; Locust (and its
gevent patching) and grpc are imported inside the functions that run load, never
when this package is imported.
"""
