"""Route administration: everything that edits, lists or audits the route table.

admin (RouteAdmin: every edit in one transaction; routeedit, hostedit, routelist are its
parts), hostmeta (drain and weight settings), audit (the RouteAudit log and hold records),
cli (`lars route`, `lars initdb`, with audit_cli and hosts_cli), demo (the demo rows).
Shared by the CLI, the console and the route service; imports nothing from `lars.dns`.
"""
