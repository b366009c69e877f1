"""The drain toggle and the weight field in headless Chromium (Debian's, via Playwright).

On a module page a person drains a host: cancelling the confirmation changes nothing;
confirming greys the row with who drained it and when, and the route service's next load
leaves the host out. The last enabled host's toggle asks a stronger question (it forces).
A stale agent that keeps calling the drained host shows up without a reload. Undrain and
a weight complete the round. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import time

from playwright.sync_api import Dialog, Page
from sqlalchemy import insert

from lars.db import server_call_status
from lars.dns.store import RouteStore
from lars.dns.table import RouteTable
from lars.protocol.ipv4 import dotted_to_uint
from tests.browser import test_console_browser as base
from tests.browser.test_console_browser import Stack, log_in, screenshot, wait_until

# the same Chromium, console stack and page as the other browser tests
browser = base.browser
stack = base.stack
page = base.page

A, B = "10.0.0.1", "10.0.0.2"


def served(stack: Stack) -> RouteTable:
    snap = RouteStore(stack.engine).load()
    return RouteTable.from_rows(snap.version, snap.routes, snap.meta)


def row(page: Page, ip: str) -> object:
    return page.locator(f"tr[data-host='{ip}:80']")


def test_drain_toggle_confirms_greys_and_undrains(page: Page, stack: Stack) -> None:
    stack.admin.add_host(1, 1, A, 80)
    stack.admin.add_host(1, 1, B, 80)
    log_in(page, stack)
    page.goto(stack.console.url + "/modules/1/1")
    questions: list[str] = []
    answers: list[bool] = [False, True, False, True]

    def on_dialog(dialog: Dialog) -> None:
        questions.append(dialog.message)
        if answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    toggle_a = f"tr[data-host='{A}:80'] button.drain-toggle"

    page.click(toggle_a)  # cancelled: nothing written
    assert f"Drain {A}:80?" in questions[-1]
    assert all(e.enabled for e in stack.admin.list_routes(1, 1))

    page.click(toggle_a)  # confirmed
    drained = page.locator(f"tr.state-drained[data-host='{A}:80']")
    drained.wait_for()
    text = drained.inner_text()
    assert "drained" in text and "by console" in text and "UTC" in text
    assert "Undrain" in text
    grey = drained.locator("td").first.evaluate("e => getComputedStyle(e).color")
    assert grey == "rgb(138, 145, 158)", grey  # greyed
    assert served(stack).hosts((1, 1)) == ((dotted_to_uint(B), 80),)
    screenshot(page, "console-drained-host.png")

    page.click(f"tr[data-host='{B}:80'] button.drain-toggle")  # the last one: cancelled
    assert "LAST enabled host" in questions[-1] and "NOEXIST" in questions[-1]
    assert served(stack).hosts((1, 1)) == ((dotted_to_uint(B), 80),)

    # an agent with a stale route keeps calling the drained host: shown without a reload
    with stack.engine.begin() as conn:
        conn.execute(
            insert(server_call_status).values(
                modid=1, cmdid=1, ip=dotted_to_uint(A), port=80,
                caller=dotted_to_uint("192.168.7.7"), succ_cnt=25, err_cnt=0,
                ts=int(time.time()) + 10, overload="0",
            )
        )  # fmt: skip
    warning = page.locator(f"tr[data-host='{A}:80'] >> text=drained but still receiving calls")
    warning.wait_for()
    assert "192.168.7.7" in row(page, A).inner_text()  # type: ignore[attr-defined]
    screenshot(page, "console-drained-still-called.png")

    page.click(toggle_a)  # undrain, confirmed
    page.locator(f"tr[data-host='{A}:80'] button:has-text('Drain')").wait_for()
    assert "Undrain" in questions[-1]
    wait_until(lambda: len(served(stack).hosts((1, 1))) == 2, "undrained host served again")

    field = page.locator(f"tr[data-host='{B}:80'] input[name=weight]")
    field.fill("5")
    page.click(f"tr[data-host='{B}:80'] form.weight-form button")
    page.locator(".flash:has-text('weight 5')").wait_for()
    assert served(stack).weights((1, 1)) == {(dotted_to_uint(B), 80): 5}
    # Weight 0 reaches the server (the field's min is 0), which points to drain instead.
    field = page.locator(f"tr[data-host='{B}:80'] input[name=weight]")
    field.fill("0")
    page.click(f"tr[data-host='{B}:80'] form.weight-form button")
    page.locator(f"tr[data-host='{B}:80'] >> text=weight 0 is not allowed").wait_for()
    assert "drain it" in row(page, B).inner_text()  # type: ignore[attr-defined]
    assert served(stack).weights((1, 1)) == {(dotted_to_uint(B), 80): 5}
    # The refresh stamp is UTC, like every other time on the page.
    stamp = page.locator("[data-updated]").first
    wait_until(lambda: stamp.inner_text().endswith(" UTC"), "a UTC refresh stamp")
    assert not answers
