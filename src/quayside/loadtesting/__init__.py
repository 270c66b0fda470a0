"""Locust load tests generated from a signature, SLO verdicts and reports.

``payloads`` turns a signature and input example into request bodies, ``users``
makes a Locust user class of them, ``runner`` drives Locust as a library,
``slo`` judges the result and ``report`` writes it as JSON and offline HTML.
Reaches servers over HTTP only; Locust (and its gevent patching) is imported
inside the functions that run load, never when this package is imported.
"""
