"""The agent's registrations, sans-I/O: requests in, replies, due checks and syncs out.

A business process registers its endpoint with the agent on its host (RegisterRequest,
msgid 11). The Registry validates the request, holds the registration with its Checker
(lars.agent.checks), answers (RegisterResponse, msgid 12), says which checks are due, and
builds the InstanceSync (msgid 9) that tells the route service the agent's full set.
`version` moves on every change the route service must learn (an instance added,
removed, replaced, or passing/not passing); the I/O layer syncs and persists when it
moves. Time comes in as `now` (monotonic) and `wall` (unix seconds).

Requests are idempotent, and a client resends one (same seq) when no answer comes, so
the answer to each recent (peer, seq) is remembered and repeated: a resent deregister
still reads "deregistered", not "not registered".
"""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from lars.agent.checks import Checker, CheckState, Transition
from lars.agent.regconfig import RegisterConfig
from lars.errors import ValidationError
from lars.protocol import lars_pb2, wire_to_dotted
from lars.protocol.checks import Check, CheckKind, parse_check
from lars.reactor.frame import MAX_BODY

__all__ = ["Entry", "InstanceKey", "Outcome", "Registry"]

InstanceKey = tuple[int, int, int, int]  # modid, cmdid, ip (wire int32), port

OK, REFUSED, NOT_REGISTERED = 0, 2, 3
OP_REGISTER, OP_DEREGISTER, OP_HEARTBEAT = 1, 2, 3
_MAX_ID = 0x7FFFFFFF
_RECENT_REPLIES = 1024
# The agent's full set travels in ONE InstanceSync frame (the contract): a registration
# that would make it larger than a frame body, minus room for the agent id and seq, is
# refused (2,000-2,800 tcp registrations; fewer with long http URLs).
SYNC_BODY_LIMIT = MAX_BODY - 512


@dataclass(slots=True)
class Entry:
    key: InstanceKey
    check: Check
    checker: Checker
    registered_at: float  # unix seconds
    size: int = 0  # bytes it adds to an InstanceSync body

    @property
    def name(self) -> str:
        modid, cmdid, ip, port = self.key
        return f"{modid}:{cmdid} {wire_to_dotted(ip)}:{port}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `handle` did: the reply body to send, and what changed."""

    reply: bytes
    op: int = 0
    retcode: int = REFUSED
    key: InstanceKey | None = None
    changed: bool = False  # the set the route service must learn changed
    transition: Transition | None = None


class Registry:
    """Registrations of one agent (or one shard process); one owner thread calls it."""

    def __init__(self, config: RegisterConfig) -> None:
        self.config = config
        self.entries: dict[InstanceKey, Entry] = {}
        self.version = 0  # moves when the route service's view must change
        # (due time, key) of probes (tcp/http) and of ttl checks apart, so that a full
        # probe budget never delays a ttl verdict; stale items are skipped when popped
        self._heap: list[tuple[float, InstanceKey]] = []
        self._ttl_heap: list[tuple[float, InstanceKey]] = []
        self._recent: OrderedDict[Hashable, Outcome] = OrderedDict()
        self._transitions: list[tuple[Entry, Transition]] = []  # ttl verdicts of due()
        self.refused = 0
        self.bad = 0
        self.ttl_runs = 0  # ttl checks judged by due()
        self.sync_bytes = 0  # the size of an InstanceSync body's instances
        self.ttl_failed = 0

    # requests (UDP, from business processes)

    def handle(
        self, body: bytes, peer: Hashable, now: float, wall: float, shard: int | None = None
    ) -> Outcome:
        """Apply one RegisterRequest body from `peer`, received on the port of `shard`
        (None: not checked); always returns a reply to send."""
        try:
            req = lars_pb2.RegisterRequest.FromString(body)
        except DecodeError:
            self.bad += 1
            return Outcome(_reply(0, REFUSED, "unparsable RegisterRequest"))
        # the body's digest, not the body: 1,024 remembered 64 kB requests (unknown
        # fields) would pin 64 MB (issue 19: no decoder keeps a message's bytes)
        token = (peer, req.seq, hashlib.blake2b(body, digest_size=16).digest())
        seen = self._recent.get(token)
        if seen is not None:  # a resend: same answer, nothing applied twice
            return Outcome(seen.reply, seen.op, seen.retcode, seen.key)
        outcome = self._apply(req, now, wall, shard)
        self._recent[token] = outcome
        if len(self._recent) > _RECENT_REPLIES:
            self._recent.popitem(last=False)
        return outcome

    def _apply(
        self, req: lars_pb2.RegisterRequest, now: float, wall: float, shard: int | None
    ) -> Outcome:
        inst = req.instance
        key = (inst.modid, inst.cmdid, inst.ip, inst.port)
        try:
            if req.op not in (OP_REGISTER, OP_DEREGISTER, OP_HEARTBEAT):
                raise ValidationError(f"unknown op {req.op}")
            _check_key(key)
            if shard is not None and (inst.modid + inst.cmdid) % 3 != shard:
                # the port of another shard (process): it owns the module's registrations
                raise ValidationError(
                    "sent to the wrong agent port for this module ((modid + cmdid) % 3 "
                    "picks the port)"
                )
            if req.op == OP_REGISTER:
                return self._register(req, key, now, wall)
        except ValidationError as exc:
            self.refused += 1
            return Outcome(_reply(req.seq, REFUSED, str(exc)), req.op, REFUSED, key)
        if req.op == OP_DEREGISTER:
            found = self.deregister(key)
            code = OK if found else NOT_REGISTERED
            return Outcome(_reply(req.seq, code), req.op, code, key, changed=found)
        entry = self.entries.get(key)
        if entry is None:
            return Outcome(_reply(req.seq, NOT_REGISTERED), req.op, NOT_REGISTERED, key)
        transition = self.heartbeat(entry, now)
        return Outcome(
            _reply(req.seq, OK),
            req.op,
            OK,
            key,
            changed=transition is not None,
            transition=transition,
        )

    def _register(
        self, req: lars_pb2.RegisterRequest, key: InstanceKey, now: float, wall: float
    ) -> Outcome:
        check = parse_check(req.instance.check).with_settings(
            interval=req.interval_ms / 1000 if req.interval_ms else None,
            timeout=req.timeout_ms / 1000 if req.timeout_ms else None,
            fail_after=req.fail_after or None,
            pass_after=req.pass_after or None,
        )
        if key not in self.entries and len(self.entries) >= self.config.max_instances:
            raise ValidationError(
                f"the agent's limit of {self.config.max_instances} registrations is reached"
            )
        changed = self.add(key, check, now, wall)
        return Outcome(_reply(req.seq, OK), req.op, OK, key, changed=changed)

    def set_config(self, config: RegisterConfig) -> None:
        """New defaults and limits; each entry's settings are resolved again."""
        self.config = config
        for entry in self.entries.values():
            entry.checker.settings = config.settings_for(entry.check)

    # the registrations themselves

    def add(
        self,
        key: InstanceKey,
        check: Check,
        now: float,
        wall: float,
        state: CheckState | None = None,
    ) -> bool:
        """Register (or re-register) an instance; True when the route service's view
        changes. A re-registration keeps the instance's state (a restarted process that
        registers again does not leave and come back) with the new check and settings.
        Raises ValidationError when the agent's set would not fit one InstanceSync."""
        old = self.entries.get(key)
        if old is not None and old.check == check:
            if check.kind is CheckKind.TTL:  # registering again is a sign of life
                return self.heartbeat(old, now) is not None
            return False
        size = _sync_size(key, check)
        total = self.sync_bytes - (old.size if old is not None else 0) + size
        if total > SYNC_BODY_LIMIT:
            raise ValidationError(
                f"the agent's registrations would not fit one InstanceSync ({MAX_BODY} bytes)"
            )
        self.sync_bytes = total
        settings = self.config.settings_for(check)
        keep = state or (old.checker.state if old is not None else CheckState.PENDING)
        checker = Checker(settings, now, state=keep)
        registered_at = old.registered_at if old is not None else wall
        self.entries[key] = Entry(key, check, checker, registered_at, size)
        heapq.heappush(self._ttl_heap if checker.is_ttl else self._heap, (checker.next_at, key))
        self.version += 1
        return True

    def deregister(self, key: InstanceKey) -> bool:
        entry = self.entries.pop(key, None)
        if entry is None:
            return False
        self.sync_bytes -= entry.size
        self.version += 1
        return True

    def heartbeat(self, entry: Entry, now: float) -> Transition | None:
        """A sign of life: it counts only for a ttl check (a probe judges the others)."""
        if not entry.checker.is_ttl:
            return None
        transition = entry.checker.heartbeat(now)
        if transition is not None:
            self._moved(transition)
        return transition

    # checks

    def due(self, now: float, limit: int) -> list[Entry]:
        """Entries whose probe (tcp/http) is due now, at most `limit`: the caller calls
        `started` and later `finished` for each. Due ttl checks are judged here; their
        state changes wait in `take_transitions`."""
        ttl_heap = self._ttl_heap
        while ttl_heap and ttl_heap[0][0] <= now:
            at, key = heapq.heappop(ttl_heap)
            entry = self.entries.get(key)
            if entry is None or entry.checker.next_at != at or not entry.checker.is_ttl:
                continue  # stale: removed, or re-registered since
            checker = entry.checker
            transition = checker.check_ttl(now)
            self.ttl_runs += 1
            self.ttl_failed += checker.failures > 0
            heapq.heappush(ttl_heap, (checker.next_at, key))
            if transition is not None:
                self._moved(transition)
                self._transitions.append((entry, transition))
        heap = self._heap
        seen: set[InstanceKey] = set()
        out: list[Entry] = []
        while heap and heap[0][0] <= now and len(out) < limit:
            at, key = heapq.heappop(heap)
            entry = self.entries.get(key)
            if entry is None or key in seen:
                continue
            checker = entry.checker
            if checker.next_at != at or checker.in_flight or checker.is_ttl:
                continue  # stale: rescheduled or re-registered since, or still running
            seen.add(key)
            out.append(entry)
        return out

    def started(self, entry: Entry, now: float) -> None:
        entry.checker.start(now)
        heapq.heappush(self._heap, (entry.checker.next_at, entry.key))

    def finished(self, entry: Entry, ok: bool, now: float, detail: str = "") -> Transition | None:
        """A probe ended. Ignored (None) when the entry was replaced or removed meanwhile."""
        if self.entries.get(entry.key) is not entry:
            return None
        checker = entry.checker
        transition = checker.finish(ok, now, detail)
        if now >= checker.next_at:  # its slot passed while it ran: due again at once
            heapq.heappush(self._heap, (checker.next_at, entry.key))
        if transition is not None:
            self._moved(transition)
        return transition

    def next_due(self) -> float | None:
        """When the earliest scheduled check is due (may be stale: a hint for a timer)."""
        heads = [h[0][0] for h in (self._heap, self._ttl_heap) if h]
        return min(heads) if heads else None

    def take_transitions(self) -> list[tuple[Entry, Transition]]:
        """The ttl state changes judged by `due` since the last call."""
        out, self._transitions = self._transitions, []
        return out

    def _moved(self, transition: Transition) -> None:
        if (transition.old is CheckState.PASSING) != (transition.new is CheckState.PASSING):
            self.version += 1

    # views

    def counts(self) -> dict[CheckState, int]:
        """Instances by state; safe from another thread (a snapshot taken under the GIL)."""
        out = dict.fromkeys(CheckState, 0)
        for entry in list(self.entries.values()):
            out[entry.checker.state] += 1
        return out

    def sync_body(self, agent: str, seq: int) -> bytes:
        """The InstanceSync body: the agent's full set with each instance's verdict."""
        msg = lars_pb2.InstanceSync(agent=agent, seq=seq)
        for entry in self.entries.values():
            modid, cmdid, ip, port = entry.key
            msg.instances.add(
                modid=modid,
                cmdid=cmdid,
                ip=ip,
                port=port,
                check=entry.check.text,
                passing=entry.checker.passing,
            )
        return msg.SerializeToString()


def _check_key(key: InstanceKey) -> None:
    modid, cmdid, _ip, port = key
    if not 0 <= modid <= _MAX_ID or not 0 <= cmdid <= _MAX_ID:
        raise ValidationError(f"modid and cmdid must be in 0..{_MAX_ID}")
    if not 1 <= port <= 65535:
        raise ValidationError(f"port must be in 1..65535, got {port}")


def _sync_size(key: InstanceKey, check: Check) -> int:
    modid, cmdid, ip, port = key
    inst = lars_pb2.Instance(
        modid=modid, cmdid=cmdid, ip=ip, port=port, check=check.text, passing=True
    )
    return len(inst.SerializeToString()) + 3  # the field's tag and length prefix


def _reply(seq: int, retcode: int, detail: str = "") -> bytes:
    return lars_pb2.RegisterResponse(seq=seq, retcode=retcode, detail=detail).SerializeToString()
