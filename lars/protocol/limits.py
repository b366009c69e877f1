"""Limits that follow from the frame size, shared by the route service and route editors."""

from lars.reactor.frame import MAX_BODY

__all__ = ["MAX_HOSTS_PER_MODULE"]

# The most hosts one GetRouteResponse can carry in the worst case: modid and cmdid take
# 6 bytes each at most; one host 1 tag + 1 length + 11 ip (an address from 128.0.0.0 up
# is a 10-byte varint) + 4 port. RouteAdmin refuses edits beyond it; a table past it is
# served truncated.
_WORST_HEADER = 12
_WORST_HOST = 17
MAX_HOSTS_PER_MODULE = (MAX_BODY - _WORST_HEADER) // _WORST_HOST  # 3853
