"""The route service ("dns"): serves and pushes the route table kept in MySQL/SQLite.

store (consistent-snapshot reads), table (immutable snapshot + diff), guard (push-empty
guard), subscriptions (per worker), poller and pollthread (version polling, outages),
watchdog, server (TCP handlers and push), service (DnsConfig, DnsService), metrics, cli.
Editing the table is route administration, in `lars.routes`.
"""
