"""What every daemon shares for observability: the listener, histograms, metric-family
helpers, readiness rules, log formats and the `lars status` client.

No daemon code lives here and nothing here imports a daemon package: each daemon's
collector is its own `metrics.py` (lars/agent, lars/dns, lars/reporter, lars/console,
lars/up). Importing this package imports nothing else: the modules that need
prometheus_client (`server`, `families`, `hist`) are imported only by the daemons, so the
client-only install (`lars status` in `status.py`, the log formatter in `logs.py`) works
without it.
"""
