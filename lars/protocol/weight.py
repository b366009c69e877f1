"""Host weights: the lars-only field `HostInfo.weight` (3) of a GetRouteResponse.

The original Lars peers know no weights: their parsers skip field 3, and the route
service sets it only when a host's weight is not the default, so a response for
default-weight hosts is byte-for-byte the original's. On the wire 0 (the field absent)
means DEFAULT_WEIGHT. A weight of 0 is never a way to stop traffic to a host: that is
what draining (RouteHostMeta.enabled = false) is for, and lars refuses weight 0.
Weights are capped at MAX_WEIGHT: one host may get up to 1,000 times the share of
another, more than any real fleet needs, and the agent's smooth weighted round robin
stays in small integers.
"""

from __future__ import annotations

from lars.errors import ValidationError

__all__ = ["DEFAULT_WEIGHT", "MAX_WEIGHT", "validate_weight", "wire_weight"]

DEFAULT_WEIGHT = 1
MAX_WEIGHT = 1000


def validate_weight(weight: object) -> int:
    """The weight an operator asked for, checked: an int in 1..MAX_WEIGHT."""
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise ValidationError(f"weight must be an integer in 1..{MAX_WEIGHT}, got {weight!r}")
    if weight == 0:
        raise ValidationError(
            "weight 0 is not allowed: to stop traffic to a host, drain it "
            "(`lars route drain`, enabled = false) instead"
        )
    if not 1 <= weight <= MAX_WEIGHT:
        raise ValidationError(f"weight must be an integer in 1..{MAX_WEIGHT}, got {weight}")
    return weight


def wire_weight(value: int) -> int:
    """The weight a received HostInfo.weight stands for: 0 (absent) is the default, and
    a value past MAX_WEIGHT (a foreign or broken peer) is capped, never refused."""
    if value <= 0:
        return DEFAULT_WEIGHT
    return value if value <= MAX_WEIGHT else MAX_WEIGHT
