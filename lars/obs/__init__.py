"""Observability: Prometheus metrics, health and readiness, `lars status`, JSON logs.

Importing this package imports nothing else: the modules that need prometheus_client
(`collect`, `server`, the per-daemon collectors) are daemon-side and only imported by
the daemons, so the client-only install (`lars status`, `lars/obs/status.py`, and the
log formatter `lars/obs/logs.py`) works without it.
"""
