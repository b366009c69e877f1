"""The held-table banner and route history in headless Chromium (Debian's, via Playwright).

A route service's 'hold' row shows as a banner on every page; cancelling the confirmation
writes nothing; confirming writes the release (actor: the console user) and lands on the
history page that lists it; the route service's 'apply' row clears the banner without a
reload. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from playwright.sync_api import Dialog, Page

from lars.routes.audit import AuditLog
from tests.browser import test_console_browser as base
from tests.browser.test_console_browser import Stack, log_in, screenshot, wait_until

# the same Chromium, console stack and page as the other browser tests
browser = base.browser
stack = base.stack
page = base.page

DETAIL = "modules 2->0, hosts 5->0, max_drop_ratio 0.5"


def write(stack: Stack, action: str, detail: str) -> None:
    audit = AuditLog(stack.engine)
    audit.append([audit.row(actor="dns", action=action, version=42, detail=detail)])


def test_release_a_held_table_from_the_banner(page: Page, stack: Stack) -> None:
    stack.admin.add_host(1, 1, "10.0.0.5", 80)
    write(stack, "hold", DETAIL)
    log_in(page, stack)
    banner = page.locator("#hold")
    banner.wait_for()
    assert DETAIL in banner.inner_text()
    page.goto(stack.console.url + "/modules/1/1")
    assert DETAIL in page.locator("#hold").inner_text()
    assert "10.0.0.5:80" in page.locator("#module-history").inner_text()
    screenshot(page, "console-hold-banner.png")

    answers: list[bool] = [False, True]  # first cancel, then confirm

    def on_dialog(dialog: Dialog) -> None:
        assert "Release the held route table?" in dialog.message
        if answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.click("#release-hold button[type=submit]")
    assert page.url.endswith("/modules/1/1")  # cancelled: still here, nothing written
    assert [e.action for e in AuditLog(stack.engine).history(limit=1)] == ["hold"]

    page.click("#release-hold button[type=submit]")
    page.wait_for_url("**/history")
    release_row = page.locator("tr.action-release")
    release_row.wait_for()
    assert "console" in release_row.inner_text()
    assert "written at version" in page.locator(".flash").inner_text()
    assert "asked by console" in page.locator("#hold-released").inner_text()
    assert page.locator("#release-hold").count() == 0
    newest = AuditLog(stack.engine).history(limit=1)[0]
    assert (newest.action, newest.actor, newest.version) == (
        "release",
        "console",
        stack.admin.current_version(),
    )
    screenshot(page, "console-hold-released.png")

    write(stack, "apply", "released by console")  # what the holding route service writes
    wait_until(lambda: page.locator("#hold").count() == 0, "the banner to clear on refresh")
    page.reload()
    assert page.locator("#hold").count() == 0
    assert page.locator("tr.action-apply").count() == 1
