"""The web app in a real browser (Debian's Chromium through Playwright) against a real
server: a person logs in, opens a channel, mentions an orchestrator and watches the reply
stream in; an admin stops and starts a daemon and sees its status change live; a person
sees no admin controls. Every page runs under the app's Content-Security-Policy and must
log no console error (a CSP violation is one)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.browser import PHONE, launch_chromium, open_page
from tests.e2e.clients import bearer, login
from tests.e2e.conftest import Live, e2e_settings, running
from tests.e2e.proxy import cuttable_proxy
from tests.support.model_server import ModelServer, ok
from tests.support.seed import Org

pytestmark = pytest.mark.sqlite_only  # the browser adds nothing a second backend would test

REPLY = "Happy to help, Pat. First we list the risks, then we pick the smallest fix."


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as chromium:
        yield chromium


async def test_person_mentions_an_orchestrator_and_sees_the_reply_stream_in(
    database_url: str, acme: Org, browser: Browser
) -> None:
    async with ModelServer() as model:
        # Slow enough between chunks that the reply is visibly being written.
        model.script(ok(REPLY, chunks=8, delay=0.25))
        settings = e2e_settings(
            database_url, anthropic_api_key="test-key", anthropic_base_url=model.url
        )
        async with running(settings) as live, open_page(browser, live.url) as tab:
            await login(live.http, "ada@acme.test")  # ada's daemon comes online
            page = tab.page
            sent: list[str] = []
            page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(str(f))))
            await expect(page.get_by_role("heading", name="Log in to Neolith")).to_be_visible()
            await tab.screenshot("login")
            await tab.login("pat@acme.test")
            await expect(page.get_by_role("link", name="Daemons")).to_have_count(0)
            await expect(page.get_by_role("heading", name="# general")).to_be_visible()
            people = page.locator(".people-list")
            await expect(people.locator(".person", has_text="Ada")).to_contain_text("online")
            await expect(people.locator(".person", has_text="Pat")).to_contain_text("online")

            composer = page.get_by_label("Message #general")
            await composer.press_sequentially("@a")
            options = page.get_by_role("option")
            await expect(options).to_have_count(1)
            await expect(options.first).to_contain_text("@ada")
            await composer.press("Enter")  # picks the suggestion, does not send
            await expect(composer).to_have_value("@ada ")
            await composer.press_sequentially("can you help?")
            await composer.press("Shift+Enter")
            await composer.press_sequentially("It is about the release.")
            await composer.press("Enter")
            await expect(composer).to_have_value("")

            messages = page.locator(".message-list")
            mine = messages.locator(".message", has_text="can you help?")
            await expect(mine).to_contain_text("Pat")
            await expect(mine.locator(".content")).to_have_text(
                "@ada can you help?\nIt is about the release."
            )
            draft = messages.locator(".message.draft")
            await expect(draft).to_contain_text("Happy")
            await expect(draft).to_contain_text("writing…")
            await expect(page.get_by_role("status").filter(has_text="is writing")).to_have_text(
                "Ada is writing…"
            )
            await tab.screenshot("chat-streaming")
            reply = messages.locator(".message:not(.draft)", has_text=REPLY)
            await expect(reply).to_contain_text("Ada")
            await expect(draft).to_have_count(0)
            await expect(page.locator(".writing")).to_have_text("")
            # Newest at the bottom: the mention, then the reply.
            await expect(messages.locator(".message").last).to_contain_text(REPLY)
            await tab.screenshot("chat")
            assert "can you help?" in str(model.requests[-1].body["messages"])
            stored = await live.http.get(
                f"/api/channels/{acme.channel_id}/messages",
                headers=bearer(await login(live.http, "pat@acme.test")),
            )
            contents = [m["content"] for m in stored.json()["items"]]
            assert contents == ["@ada can you help?\nIt is about the release.", REPLY]
            # The send carried a client_id, so a re-send could never store it twice.
            (send_frame,) = [f for f in sent if '"message:send"' in f]
            assert re.search(r'"client_id":"[0-9a-f-]{36}"', send_frame), send_frame
            assert tab.errors == []


async def test_admin_stops_and_starts_a_daemon_and_sees_its_status(
    live: Live, acme: Org, browser: Browser
) -> None:
    ada_token = await login(live.http, "ada@acme.test")
    async with open_page(browser, live.url) as tab:
        page = tab.page
        await tab.login("admin@acme.test")
        await page.get_by_role("link", name="Daemons").click()
        row = page.locator("tr", has=page.get_by_role("rowheader", name="Ada"))
        status = row.locator(".status")
        await expect(status).to_have_text("running")
        await expect(page.locator(".health")).to_contain_text("Replies per minute")
        await tab.screenshot("admin-daemons")

        await page.get_by_role("button", name="Stop Ada", exact=True).click()
        await expect(status).to_have_text("stopped")
        await expect(page.get_by_role("button", name="Start Ada", exact=True)).to_be_enabled()
        await page.get_by_role("button", name="Start Ada", exact=True).click()
        await expect(status).to_have_text("running")
        await expect(page.get_by_role("button", name="Start Ada", exact=True)).to_be_disabled()

        # A change made elsewhere arrives over Socket.IO (`daemon:status`): ada logs out.
        logout = await live.http.post("/api/auth/logout", headers=bearer(ada_token))
        assert logout.status_code == 204
        await expect(status).to_have_text("stopped")

        log = page.locator(".event-log")
        await expect(log.locator(".event").first).to_contain_text("Ada")
        await page.get_by_label("Orchestrator").select_option(label="Ada")
        await expect(log.locator(".event-type", has_text="daemon:stopped").first).to_be_visible()
        await tab.screenshot("admin-events")
        await page.set_viewport_size(PHONE)
        await expect(page.get_by_role("button", name="Start Ada", exact=True)).to_be_visible()
        await tab.screenshot("phone-admin")
        assert tab.errors == []


async def test_a_person_sees_no_admin_controls(live: Live, acme: Org, browser: Browser) -> None:
    async with open_page(browser, live.url, viewport=PHONE) as tab:
        page = tab.page
        await tab.login("pat@acme.test")
        await expect(page.get_by_role("heading", name="# general")).to_be_visible()
        await tab.screenshot("phone-chat")
        await expect(page.get_by_role("link", name="Daemons")).to_have_count(0)
        await page.goto(f"{live.url}/#/admin")  # the address typed in by hand
        await expect(page.get_by_role("alert")).to_contain_text("for organization admins")
        await expect(page.get_by_role("button", name="Stop Ada", exact=True)).to_have_count(0)
        await expect(page.locator("table")).to_have_count(0)
        assert tab.errors == []


async def test_after_a_network_drop_it_reconnects_and_shows_what_it_missed(
    live: Live, acme: Org, browser: Browser
) -> None:
    admin_token = await login(live.http, "admin@acme.test")
    async with cuttable_proxy(live.url) as network, open_page(browser, network.url) as tab:
        page = tab.page
        await tab.login("pat@acme.test")
        connection = page.locator(".connection")
        await expect(connection).to_have_text("Connected")
        await expect(page.get_by_role("heading", name="# general")).to_be_visible()

        network.cut()
        await expect(connection).to_have_text("Reconnecting…")
        missed = await live.http.post(
            f"/api/channels/{acme.channel_id}/messages",
            json={"content": "Posted while Pat was offline."},
            headers=bearer(admin_token),
        )
        assert missed.status_code == 201, missed.text

        network.restore()
        await expect(connection).to_have_text("Connected")
        missed_message = page.locator(".message", has_text="Posted while Pat was offline.")
        await expect(missed_message).to_contain_text("Admin")
        await expect(missed_message).to_have_count(1)
        # Requests and socket connections cut off while the link was down are the only
        # console errors.
        assert [e for e in tab.errors if "net::ERR_" not in e and "/socket.io/" not in e] == []


async def test_older_messages_load_on_scroll(live: Live, acme: Org, browser: Browser) -> None:
    pat_token = await login(live.http, "pat@acme.test")
    for n in range(1, 121):
        posted = await live.http.post(
            f"/api/channels/{acme.channel_id}/messages",
            json={"content": f"Note number {n}."},
            headers=bearer(pat_token),
        )
        assert posted.status_code == 201, posted.text
    async with open_page(browser, live.url) as tab:
        page = tab.page
        await tab.login("pat@acme.test")
        messages = page.locator(".message-list .message")
        await expect(messages).to_have_count(50)
        await expect(messages.last).to_contain_text("Note number 120.")
        log = page.get_by_role("log")
        for expected in (100, 120):
            await log.evaluate("el => { el.scrollTop = 0; }")
            await expect(messages).to_have_count(expected)
        await expect(messages.first).to_contain_text("Note number 1.")
        await expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()
        assert tab.errors == []


async def test_admin_creates_an_orchestrator_and_edits_its_charter(
    live: Live, acme: Org, browser: Browser
) -> None:
    admin_token = await login(live.http, "admin@acme.test")
    async with open_page(browser, live.url) as tab:
        page = tab.page
        await tab.login("admin@acme.test")
        await page.get_by_role("link", name="Daemons").click()
        await page.get_by_role("button", name="New orchestrator").click()
        form = page.locator("form.charter-form")
        await form.get_by_label("Email").fill("grace@acme.test")
        await form.get_by_label("Display name").fill("Grace")
        await form.get_by_label("Password", exact=True).fill("short")
        await form.get_by_role("button", name="Create orchestrator").click()
        # The API's rules, checked before sending: named per field, focus on the first.
        await expect(form.get_by_label("Password", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        await expect(form.locator("#create-password-error")).to_have_text("At least 8 characters.")
        await expect(form.locator("#create-name-error")).to_have_text("Required.")
        await expect(form.get_by_label("Password", exact=True)).to_be_focused()

        await form.get_by_label("Password", exact=True).fill("a long enough password")
        await form.get_by_label("Charter name").fill("Grace")
        await form.get_by_label("Role").fill("Reviewer")
        await form.get_by_label("Instructions (one per line)").fill("Be brief.\nCite sources.")
        await form.get_by_role("heading", name="New orchestrator").scroll_into_view_if_needed()
        await tab.screenshot("admin-new-orchestrator")
        await form.get_by_role("button", name="Create orchestrator").click()
        await expect(form.get_by_role("alert")).to_have_text("Created @grace.")
        row = page.locator("tr", has=page.get_by_role("rowheader", name="Grace"))
        await expect(row.locator(".status")).to_have_text("stopped")

        # The server's refusal is shown too (here: the e-mail is taken).
        await form.get_by_role("button", name="Create orchestrator").click()
        await expect(form.get_by_role("alert")).to_contain_text("already exists")

        await page.get_by_role("button", name="Edit the charter of Grace").click()
        dialog = page.get_by_role("dialog")
        await expect(dialog.get_by_label("Role")).to_have_value("Reviewer")
        await dialog.get_by_label("Mission").fill("Review every pull request.")
        await dialog.get_by_role("button", name="Save charter").click()
        await expect(dialog.get_by_role("alert")).to_have_text("Charter saved.")

        listed = await live.http.get("/api/admin/daemons", headers=bearer(admin_token))
        (grace,) = [d for d in listed.json() if d["handle"] == "grace"]
        stored = await live.http.get(
            f"/api/admin/orchestrators/{grace['orchestrator_id']}", headers=bearer(admin_token)
        )
        charter = stored.json()["charter"]
        assert charter["mission"] == "Review every pull request."
        assert charter["instructions"] == ["Be brief.", "Cite sources."]
        assert charter["role"] == "Reviewer"
        # Chromium logs the refused request (409) itself; nothing else went wrong.
        assert [e for e in tab.errors if "status of 409" not in e] == []
