"""The demo routes of `lars up --demo` and `lars initdb --demo`."""

__all__ = ["DEMO_ROUTES"]

# The rows of lars/sql/demo_routes.sql (`lars sql demo`): (modid, cmdid, ip, port).
DEMO_ROUTES: tuple[tuple[int, int, str, int], ...] = (
    (1, 1, "127.0.0.1", 9101),
    (1, 1, "127.0.0.1", 9102),
    (1, 1, "127.0.0.1", 9103),
    (1, 2, "192.168.1.177", 9000),
    (1, 2, "192.168.1.178", 9000),
    (2, 1, "10.0.0.1", 8080),
)
