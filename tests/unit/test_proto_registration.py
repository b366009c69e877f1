"""Issue 20's wire additions are invisible to original Lars peers.

GetRouteResponse gains version (4) and registrations (5); an original agent receives such
replies from a lars route service, so the "original parser" (protoc's output for
tests/data/lars_original.proto, see tests/unit/test_proto_compat.py) must read them with
every field it knows intact. The new message ids 9..12 are unknown to the original
MessageId enum: original peers never receive them (the sending rules are tested with the
agent's route client and the registry).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lars.protocol import MsgId, lars_pb2
from tests.unit.test_proto_compat import original  # noqa: F401  (the fixture)

int32 = st.integers(-(2**31), 2**31 - 1)
uint32 = st.integers(0, 2**32 - 1)


def test_the_original_descriptor_has_neither_field(original: dict[str, Any]) -> None:  # noqa: F811
    fields = [f.name for f in original["GetRouteResponse"].DESCRIPTOR.fields]
    assert fields == ["modid", "cmdid", "host"]


def test_the_original_enum_ends_at_8(original: dict[str, Any]) -> None:  # noqa: F811
    enum = original["GetRouteResponse"].DESCRIPTOR.file.enum_types_by_name["MessageId"]
    assert max(v.number for v in enum.values) == 8
    new = [MsgId.INSTANCE_SYNC, MsgId.INSTANCE_SYNC_ACK, MsgId.REGISTER_REQUEST]
    assert [int(m) for m in [*new, MsgId.REGISTER_RESPONSE]] == [9, 10, 11, 12]


@given(
    hosts=st.lists(st.tuples(int32, st.integers(0, 65535)), max_size=20),
    modid=int32,
    cmdid=int32,
    version=uint32,
    registrations=st.booleans(),
)
def test_an_original_parser_reads_a_reply_that_advertises_registrations(
    original: dict[str, Any],  # noqa: F811
    hosts: list[tuple[int, int]],
    modid: int,
    cmdid: int,
    version: int,
    registrations: bool,
) -> None:
    ours = lars_pb2.GetRouteResponse(
        modid=modid, cmdid=cmdid, version=version, registrations=registrations
    )
    for ip, port in hosts:
        ours.host.add(ip=ip, port=port)
    theirs = original["GetRouteResponse"].FromString(ours.SerializeToString())
    assert (theirs.modid, theirs.cmdid) == (modid, cmdid)
    assert [(h.ip, h.port) for h in theirs.host] == hosts
    # the original parser drops exactly the two new fields: re-encoded, it is our reply
    # without them (so a reply with both unset is byte-identical to an original's)
    plain = lars_pb2.GetRouteResponse(modid=modid, cmdid=cmdid)
    plain.host.extend(ours.host)
    theirs.DiscardUnknownFields()  # protobuf keeps unknown fields for re-encoding
    assert theirs.SerializeToString() == plain.SerializeToString()
    if not version and not registrations:
        assert ours.SerializeToString() == plain.SerializeToString()
    back = lars_pb2.GetRouteResponse.FromString(ours.SerializeToString())
    assert (back.version, back.registrations) == (version, registrations)


def test_registration_messages_round_trip() -> None:
    inst = lars_pb2.Instance(modid=1, cmdid=2, ip=-1062731343, port=80, check="tcp", passing=True)
    sync = lars_pb2.InstanceSync(agent="10.0.0.1:8888", seq=7)
    sync.instances.append(inst)
    assert lars_pb2.InstanceSync.FromString(sync.SerializeToString()) == sync
    req = lars_pb2.RegisterRequest(seq=1, op=1, instance=inst, interval_ms=1000)
    assert lars_pb2.RegisterRequest.FromString(req.SerializeToString()) == req
    assert lars_pb2.InstanceSync.FromString(b"").instances == []
