"""Form field parsing: each bad field gets its own clear message."""

from __future__ import annotations

import pytest

from lars.console.validate import FieldErrors, Fields, check_text


def test_good_fields_parse() -> None:
    fields = Fields(
        {
            "modid": " 7 ",
            "cmdid": "2147483647",
            "ip": "10.0.0.1",
            "port": "80",
            "mod_desc": "  user service ",
        }
    )
    assert fields.ident("modid", "modid") == 7
    assert fields.ident("cmdid", "cmdid") == 2147483647
    assert fields.ip() == "10.0.0.1"
    assert fields.port() == 80
    assert fields.text("mod_desc") == "user service"
    assert fields.text("missing") == ""
    fields.check()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("modid", "", "modid is required"),
        ("modid", "-1", "whole number 0..2147483647"),
        ("modid", "2147483648", "whole number"),
        ("modid", "1e3", "whole number"),
        ("modid", "99999999999999999999", "whole number"),
        ("ip", "", "IP address is required"),
        ("ip", "10.0.0", "dotted IPv4"),
        ("ip", "256.1.1.1", "dotted IPv4"),
        ("ip", "010.0.0.1", "dotted IPv4"),  # one rule everywhere: no leading zeros
        ("ip", "host.example", "dotted IPv4"),
        ("port", "0", "1..65535"),
        ("port", "65536", "1..65535"),
        ("port", "http", "1..65535"),
        ("port", "", "port is required"),
    ],
)
def test_bad_fields_are_named_with_a_message(name: str, value: str, message: str) -> None:
    fields = Fields({name: value})
    {"modid": lambda: fields.ident("modid", "modid"), "ip": fields.ip, "port": fields.port}[name]()
    with pytest.raises(FieldErrors) as info:
        fields.check()
    assert message in info.value.errors[name]
    assert name in str(info.value)


def test_every_bad_field_is_reported_at_once() -> None:
    fields = Fields({"ip": "x", "port": "0"})
    fields.ip()
    fields.port()
    fields.fail("ip", "second message is ignored")
    assert set(fields.errors) == {"ip", "port"}
    assert "dotted" in fields.errors["ip"]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("plain words", True),
        ("tab\tok", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("bell\x07", False),
        ("nul\x00", False),
        ("surrogate \ud800", False),
        ("ünïcødé ✓", True),
    ],
)
def test_description_text_rules(text: str, ok: bool) -> None:
    assert (check_text(text) is None) == ok
