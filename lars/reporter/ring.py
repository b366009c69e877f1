"""Consistent-hash ring over writer indexes, sans-I/O (spec section 7).

(modid, cmdid) is hashed with murmur3 onto a ring of virtual nodes, so one module's
reports always reach the same writer (and are written in order), and adding a writer
moves only about 1/N of the modules, all of them to the new writer.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable

import mmh3

__all__ = ["DEFAULT_VNODES", "HashRing"]

DEFAULT_VNODES = 160
_KEY = struct.Struct("<ii")
_VNODE = struct.Struct("<ii")


def _hash(data: bytes) -> int:
    value: int = mmh3.hash(data, 0, signed=False)
    return value


class HashRing:
    """Maps (modid, cmdid) to one of the node ids on the ring.

    Each node owns `vnodes` points; a key belongs to the first point at or after its
    own hash (wrapping around). The placement depends only on the node ids, never on
    the order they were added, so every process with the same nodes agrees.
    """

    __slots__ = ("_hashes", "_nodes", "_owners", "vnodes")

    def __init__(self, nodes: Iterable[int] = (), *, vnodes: int = DEFAULT_VNODES) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be >= 1, not {vnodes}")
        self.vnodes = vnodes
        self._nodes: set[int] = set()
        self._hashes: list[int] = []
        self._owners: list[int] = []
        for node in nodes:
            self.add(node)

    @property
    def nodes(self) -> frozenset[int]:
        return frozenset(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def add(self, node: int) -> None:
        """Place `node`'s virtual points; ValueError if it is already on the ring."""
        if node in self._nodes:
            raise ValueError(f"node {node} is already on the ring")
        self._nodes.add(node)
        self._rebuild()

    def remove(self, node: int) -> None:
        """Take `node` off the ring; its keys spread over the remaining nodes."""
        if node not in self._nodes:
            raise KeyError(node)
        self._nodes.discard(node)
        self._rebuild()

    def _rebuild(self) -> None:
        # (hash, node) sorted: a hash collision between two nodes resolves the same way
        # whatever order the nodes were added in.
        points = sorted(
            (_hash(_VNODE.pack(node, replica)), node)
            for node in self._nodes
            for replica in range(self.vnodes)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [n for _, n in points]

    def node_for(self, modid: int, cmdid: int) -> int:
        """The node that owns module (modid, cmdid); LookupError on an empty ring."""
        hashes = self._hashes
        if not hashes:
            raise LookupError("the hash ring has no nodes")
        i = bisect.bisect_left(hashes, _hash(_KEY.pack(modid, cmdid)))
        return self._owners[i if i < len(hashes) else 0]
