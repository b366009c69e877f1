"""Accounts and roles in headless Chromium against a real `python -m lars console` process.

The bootstrap admin adds a viewer and an editor and creates an API token on the Accounts
page; the viewer sees the modules but no edit button anywhere (no add, drain, weight,
delete, release, Accounts); the editor drains a host and the history names them; the
admin revokes the token on the page and the next API call with it gets 401.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page

from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from tests.browser import test_console_browser as base
from tests.browser.test_console_browser import TIMEOUT_MS, screenshot
from tests.conftest import free_port
from tests.e2e.test_sighup import Proc, stop_cleanly, wait_for

browser = base.browser  # the same Debian Chromium as the other browser tests

PASSWORD = "bootstrap-password-1"
EDIT_SELECTORS = (
    "form#add-module",
    "form#add-host",
    "form#descriptions",
    "button.drain-toggle",
    "form.weight-form",
    "form.delete",
    "form#release-hold",
    "nav a[href='/accounts']",
)


@dataclass
class Live:
    url: str


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    db = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(db)
    try:
        init_schema(engine)
        admin = RouteAdmin(engine)
        for ip in ("10.0.0.1", "10.0.0.2"):
            admin.add_host(1, 1, ip, 80)
        # a held table, so the banner (and, for an admin only, its Release button) shows
        admin.audit.append([admin.audit.row(actor="dns", action="hold", version=1, detail="d")])
    finally:
        engine.dispose()
    saved = os.environ.get("LARS_CONSOLE_PASSWORD")
    os.environ["LARS_CONSOLE_PASSWORD"] = PASSWORD
    try:
        port = str(free_port())
        proc = Proc(tmp_path / "console.log", "console", "--db", db, "--port", port)
    finally:
        if saved is None:
            os.environ.pop("LARS_CONSOLE_PASSWORD")
        else:
            os.environ["LARS_CONSOLE_PASSWORD"] = saved
    try:
        yield Live(wait_for(proc, r"listening on (http://\S+?),").group(1))
    finally:
        stop_cleanly(proc)


def new_page(browser: Browser, errors: list[str]) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # e.g. a script missing a form
    return page


def log_in(page: Page, live: Live, user: str, password: str) -> None:
    page.goto(live.url + "/login")
    if user:
        page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Modules')")


def test_admin_viewer_editor_and_a_token(browser: Browser, live: Live) -> None:
    errors: list[str] = []
    admin = new_page(browser, errors)
    log_in(admin, live, "", PASSWORD)  # the bootstrap admin: no user name
    assert admin.inner_text("#whoami") == "console · admin"
    # the same pages show an admin every edit control the viewer must not see
    seen = set()
    for path in ("/", "/modules/1/1"):
        admin.goto(live.url + path)
        seen |= {sel for sel in EDIT_SELECTORS if admin.locator(sel).count() > 0}
    assert seen == set(EDIT_SELECTORS)
    admin.click("nav a[href='/accounts']")
    for name, role, password in (
        ("vic", "viewer", "vic-password-1"),
        ("ed", "editor", "ed-password-12"),
    ):
        admin.fill("#add-user input[name=name]", name)
        admin.select_option("#add-user select[name=role]", role)
        admin.fill("#add-user input[name=password]", password)
        admin.click("#add-user button[type=submit]")
        admin.wait_for_selector(f"#users tr[data-account='{name}']")
    admin.fill("#add-token input[name=name]", "ci")
    admin.select_option("#add-token select[name=role]", "viewer")
    admin.click("#add-token button[type=submit]")
    token = admin.inner_text("#new-token").strip()
    assert token.startswith("lars_")
    screenshot(admin, "console-accounts.png")
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live.url}/api/modules", headers=bearer, timeout=30).status_code == 200

    # the viewer: everything readable, no edit button anywhere
    viewer = new_page(browser, errors)
    log_in(viewer, live, "vic", "vic-password-1")
    assert viewer.inner_text("#whoami") == "vic · viewer"
    assert viewer.locator("#hold").count() == 1  # the held-table banner, without Release
    for path in ("/", "/modules/1/1", "/versions", "/history"):
        viewer.goto(live.url + path)
        for selector in EDIT_SELECTORS:
            assert viewer.locator(selector).count() == 0, (path, selector)
    viewer.goto(live.url + "/modules/1/1")
    assert viewer.locator("tr[data-host='10.0.0.1:80']").count() == 1
    # the host table refreshes itself (every 5 s): the refreshed fragment has no controls
    viewer.wait_for_timeout(6500)
    assert viewer.locator("tr[data-host='10.0.0.1:80']").count() == 1
    for selector in EDIT_SELECTORS:
        assert viewer.locator(selector).count() == 0, ("refreshed", selector)
    screenshot(viewer, "console-viewer-module.png")
    viewer.goto(live.url + "/accounts")
    assert viewer.locator("text=needs the admin role").count() == 1

    # the editor drains a host; the history names them
    editor = new_page(browser, errors)
    log_in(editor, live, "ed", "ed-password-12")
    editor.goto(live.url + "/modules/1/1")
    assert editor.locator("form#release-hold").count() == 0  # release is admin-only
    assert editor.locator("nav a[href='/accounts']").count() == 0
    editor.click("tr[data-host='10.0.0.1:80'] button.drain-toggle")
    editor.wait_for_selector("tr[data-host='10.0.0.1:80'] .drained-by:has-text('by ed')")
    editor.goto(live.url + "/history")
    drain_row = editor.locator("tr.action-drain").first
    assert drain_row.locator("td").nth(2).inner_text() == "ed"

    # the admin revokes the token on the page: the next call with it gets 401
    admin.goto(live.url + "/accounts")
    admin.click("#tokens tr[data-account='ci'] button")
    admin.wait_for_selector("text=Token ci revoked.")
    assert requests.get(f"{live.url}/api/modules", headers=bearer, timeout=30).status_code == 401
    assert not errors, errors
