"""lars.boundary: exit codes and one-line descriptions, from plain exception values."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.exc import ArgumentError, OperationalError

from lars.boundary import ExitCode, describe, exit_code_for, report_failure
from lars.client.result import HostResult, NoHostError
from lars.errors import (
    ConfigError,
    LarsTimeout,
    NetworkError,
    NoHost,
    NotAnswering,
    StoreUnavailable,
    ValidationError,
)
from lars.protocol import RetCode


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ValidationError("x"), ExitCode.USAGE),
        (ConfigError("x"), ExitCode.USAGE),
        (ArgumentError("bad url"), ExitCode.USAGE),
        (NotAnswering("x"), ExitCode.NO_ANSWER),
        (LarsTimeout("x"), ExitCode.NO_ANSWER),
        (NoHost("x"), ExitCode.NO_HOST),
        (NoHostError(HostResult(RetCode.NOEXIST, 1, 2)), ExitCode.NO_HOST),
        (NetworkError("x"), ExitCode.FAILURE),
        (StoreUnavailable("x"), ExitCode.FAILURE),
        (PermissionError(13, "Permission denied", "/etc/x"), ExitCode.FAILURE),
        (RuntimeError("bug"), ExitCode.FAILURE),
    ],
)
def test_exit_codes(exc: BaseException, code: ExitCode) -> None:
    assert exit_code_for(exc) is code


def test_documented_code_values() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 130]


def test_foreign_errors_become_one_line() -> None:
    assert describe(PermissionError(13, "Permission denied", "/etc/x")) == (
        "/etc/x: Permission denied"
    )
    orig = Exception(2003, "Can't connect to MySQL server on '127.0.0.1'")
    db = OperationalError("SELECT 1", {}, orig)
    assert describe(db) == "database: Can't connect to MySQL server on '127.0.0.1'"
    assert describe(StoreUnavailable("a\nb\n(Background on this error at: x)")) == "a b"


def test_report_failure_prints_one_line_and_a_traceback_only_when_debugging() -> None:
    out = io.StringIO()
    assert report_failure("route add", ValidationError("bad: x"), debug=False, stream=out) == 2
    assert out.getvalue() == "lars route add: bad: x\n"
    out = io.StringIO()
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        assert report_failure("dns", exc, debug=False, stream=out) == 1
        assert out.getvalue() == (
            "lars dns: internal error: RuntimeError: boom "
            "(rerun with --log-level DEBUG for the traceback)\n"
        )
        out = io.StringIO()
        report_failure("dns", exc, debug=True, stream=out)
    assert out.getvalue().startswith("Traceback")
    assert out.getvalue().endswith("lars dns: internal error: RuntimeError: boom\n")
