"""Locust load tests generated from a signature, SLO verdicts and reports.

Arrives with load testing; reaches servers over HTTP only.
"""
