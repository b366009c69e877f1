"""The route service ("dns"): serves and pushes the route table kept in MySQL/SQLite.

admin (RouteAdmin: every edit in one transaction), store (consistent-snapshot reads),
table (immutable snapshot + diff), subscriptions (per worker), poller (version polling,
outages), server (TCP handlers and push), service (DnsConfig, DnsService), cli.
"""
