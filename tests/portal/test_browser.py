"""The portal in a real browser (Playwright + Debian's Chromium) against the local stack: sign in, list, download,
share, batch-sign, upload, errors in words, OIDC sign-in with a refresh that keeps the page, languages, keyboard,
phone width. Bytes are compared with what the stack seeded or the test uploaded."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
import urllib.error
import urllib.request

from local.up import DEMO_OBJECTS, banner, root_bucket
from tests.portal.conftest import IDP_TOKEN_LIFETIME, open_page, screenshot

SCOPE_FILES = {key: body for key, body in DEMO_OBJECTS.items() if key.startswith("exampledir/")}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def sign_in_with_key(page, stack) -> None:
    page.goto(stack.portal_url)
    page.fill("#api-key", stack.secrets.api_key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector('tr[data-key="exampledir/exampleobject.txt"]')


def row(page, key: str):
    return page.locator(f'tr[data-key="{key}"]')


def test_make_run_prints_the_portal_first_and_it_answers(apikey_stack):
    first = banner(apikey_stack).splitlines()[0]
    assert first.startswith("Portal") and apikey_stack.portal_url in first
    assert b'src="/portal/portal.js"' in fetch(apikey_stack.portal_url)


def test_sign_in_with_the_demo_key_and_list_the_scope(page, apikey_stack):
    sign_in_with_key(page, apikey_stack)
    listed = page.eval_on_selector_all("#rows tr[data-key]", "rows => rows.map(r => r.dataset.key)")
    assert set(SCOPE_FILES) <= set(listed) and all(key.startswith("exampledir/") for key in listed)
    assert row(page, "exampledir/exampleobject.txt").locator("td.size").inner_text() == \
        f"{len(SCOPE_FILES['exampledir/exampleobject.txt'])} B"
    assert "exampledir/" in page.inner_text("#who")
    # Only this tab's sessionStorage holds the sign-in: never localStorage, never the address.
    assert page.evaluate("localStorage.length") == 0
    assert apikey_stack.secrets.api_key not in page.url
    assert apikey_stack.secrets.api_key in page.evaluate("sessionStorage.getItem('portal.auth')")
    screenshot(page, "portal-list")
    page.reload()  # the tab keeps its sign-in
    page.wait_for_selector('tr[data-key="exampledir/exampleobject.txt"]')


def test_folders_and_paging_through_a_large_prefix(page, apikey_stack):
    bucket = root_bucket(apikey_stack)
    keys = [f"exampledir/many/file-{n:03d}.txt" for n in range(73)]
    for key in keys:
        bucket.put_object(key, key.encode())
    sign_in_with_key(page, apikey_stack)
    page.click("#rows td.name button:has-text('many/')")
    page.wait_for_selector(f'tr[data-key="{keys[0]}"]')

    def shown() -> list[str]:
        return page.eval_on_selector_all("#rows tr[data-key]", "rows => rows.map(r => r.dataset.key)")

    assert shown() == keys[:50] and page.inner_text("#page-number") == "Page 1"
    page.click("#next-page")
    page.wait_for_selector(f'tr[data-key="{keys[50]}"]')
    assert shown() == keys[50:] and page.is_disabled("#next-page")
    page.click("#prev-page")
    page.wait_for_selector(f'tr[data-key="{keys[0]}"]')
    assert shown() == keys[:50]
    page.click("#breadcrumbs button:has-text('Home')")
    page.wait_for_selector('tr[data-key="exampledir/exampleobject.txt"]')


def vended_sessions(stack) -> list[str]:
    store = stack.cloud.token_store
    with store._lock:
        rows = store._conn.execute("SELECT access_key_id FROM sessions WHERE role_arn LIKE '%-vended'").fetchall()
    return [row[0] for row in rows]


def test_credentials_the_store_calls_expired_are_renewed_without_losing_the_page(page, apikey_stack, console):
    sign_in_with_key(page, apikey_stack)
    page.evaluate("window.keptPage = 'still here'")
    before = vended_sessions(apikey_stack)
    store = apikey_stack.cloud.token_store
    with store._lock:  # the store now holds every credential handed to the page as expired
        store._conn.execute("UPDATE sessions SET expiration = '2020-01-01T00:00:00Z' WHERE role_arn LIKE '%-vended'")
    # The refused listing, before the page renews its credentials (the emulator's error answer carries no CORS
    # headers, so the browser reports it as blocked).
    console.expect(r"status of 403|blocked by CORS policy|net::ERR_FAILED")
    page.click("#refresh")
    page.wait_for_function("() => document.getElementById('status').textContent === ''")
    assert page.is_hidden("#error"), page.inner_text("#error")
    assert page.locator("#rows tr[data-key]").count() > 0
    assert len(vended_sessions(apikey_stack)) > len(before)  # a new /sts call
    assert page.evaluate("window.keptPage") == "still here"


def test_download_a_file_and_compare_its_bytes(page, apikey_stack):
    sign_in_with_key(page, apikey_stack)
    for key in ("exampledir/exampleobject.txt", "exampledir/\u62a5\u544a 2026.txt"):
        with page.expect_download() as waiting:
            row(page, key).locator("button.download").click()
        download = waiting.value
        assert download.suggested_filename == key.rsplit("/", 1)[1]
        with open(download.path(), "rb") as saved:
            assert saved.read() == DEMO_OBJECTS[key]


def test_share_a_link_copy_it_and_fetch_it(page, apikey_stack):
    sign_in_with_key(page, apikey_stack)
    key = "exampledir/a b+c.txt"
    row(page, key).locator("button.share").click()
    page.select_option("#share-validity", "3600")
    page.click("#share-create")
    page.wait_for_selector("#share-result:not([hidden])")
    url = page.input_value("#share-url")
    assert fetch(url) == DEMO_OBJECTS[key]
    assert page.is_hidden("#share-clamped") and "Valid until" in page.inner_text("#share-expiry")
    page.click("#share-copy")
    assert page.evaluate("navigator.clipboard.readText()") == url
    # Seven days is more than this deployment allows: the link is shortened, and the page says why.
    page.select_option("#share-validity", "604800")
    page.click("#share-create")
    page.wait_for_selector("#share-clamped:not([hidden])")
    assert page.get_attribute("#share-clamped", "data-reason") in {"configured_max", "credentials"}
    assert "Shorter than asked" in page.inner_text("#share-clamped")
    # A proxy link goes through this site's /download.
    page.check("#share-proxy")
    page.select_option("#share-validity", "3600")
    page.click("#share-create")
    page.wait_for_function("() => document.getElementById('share-url').value.includes('/download/')")
    proxy_url = page.input_value("#share-url")
    assert proxy_url.startswith(apikey_stack.gateway.url + "/download/") and fetch(proxy_url) == DEMO_OBJECTS[key]
    # Taken back from the page: the link stops working within the stated delay (the list is cached 30 s).
    page.click("#share-revoke")
    page.wait_for_selector("#share-revoked:not([hidden])")
    assert "within 30 seconds" in page.inner_text("#share-revoked")
    deadline = time.monotonic() + 40
    while True:
        try:
            fetch(proxy_url)
        except urllib.error.HTTPError as refused:
            assert refused.code == 403 and json.loads(refused.read())["code"] == "LinkRevoked"
            break
        assert time.monotonic() < deadline, "the revoked link still works after the stated delay"
        time.sleep(1)
    screenshot(page, "portal-share")
    page.keyboard.press("Escape")  # the dialog closes from the keyboard
    assert not page.evaluate("document.getElementById('share-dialog').open")


def test_batch_sign_three_files_then_download_them_and_save_a_csv(page, apikey_stack):
    sign_in_with_key(page, apikey_stack)
    keys = sorted(SCOPE_FILES)
    assert len(keys) == 3
    for key in keys:
        row(page, key).locator("td.select input").check()
    assert "3" in page.inner_text("#selected-count")
    page.click("#sign-selected")
    page.wait_for_selector("#batch-results li >> nth=2")
    links = page.eval_on_selector_all("#batch-results li a", "anchors => anchors.map(a => [a.textContent, a.href])")
    assert sorted(key for key, _ in links) == keys
    for key, url in links:
        assert fetch(url) == DEMO_OBJECTS[key]
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    page.click("#download-all")
    deadline = time.monotonic() + 20
    while len(downloads) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    saved = {d.suggested_filename: open(d.path(), "rb").read() for d in downloads}  # noqa: SIM115
    assert saved == {key.rsplit("/", 1)[1]: DEMO_OBJECTS[key] for key in keys}
    with page.expect_download() as waiting:
        page.click("#save-csv")
    rows = list(csv.DictReader(io.StringIO(open(waiting.value.path(), encoding="utf-8").read())))  # noqa: SIM115
    assert sorted(r["key"] for r in rows) == keys and all(r["url"].startswith("http") for r in rows)
    screenshot(page, "portal-batch")


def test_upload_shows_progress_to_100_and_the_file_appears(page, apikey_stack, tmp_path):
    sign_in_with_key(page, apikey_stack)
    body = os.urandom(650 * 1024)  # several parts of at least 100 KiB: a real multipart upload
    source = tmp_path / "uploaded by the portal.bin"
    source.write_bytes(body)
    page.evaluate("""() => { window.progressSeen = [];
      new MutationObserver(() => window.progressSeen.push(document.getElementById('upload-progress').value))
        .observe(document.getElementById('upload-percent'),
                 {childList: true, characterData: true, subtree: true}); }""")
    page.set_input_files("#upload-file", str(source))
    page.click("#upload-form button[type=submit]")
    key = "exampledir/uploaded by the portal.bin"
    page.wait_for_selector(f'tr[data-key="{key}"]', timeout=30000)
    assert page.inner_text("#upload-percent") == "100%"
    seen = page.evaluate("window.progressSeen")
    assert seen[-1] == 100 and any(0 < value < 100 for value in seen), seen
    assert root_bucket(apikey_stack).get_object(key).read() == body
    screenshot(page, "portal-upload")


def test_an_upload_interrupted_by_a_reload_resumes_where_it_stopped(page, apikey_stack, tmp_path):
    body = os.urandom(3 * 1024 * 1024)  # 31 parts of 100 KiB
    source = tmp_path / "resumed.bin"
    source.write_bytes(body)
    key = "exampledir/resumed.bin"
    sign_in_with_key(page, apikey_stack)
    oss = apikey_stack.cloud.oss_endpoint
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if oss in request.url else None)

    def initiates() -> list[str]:
        return [url for url in seen if re.search(r"[?&]uploads(=|&|$)", url)]

    cdp = page.context.new_cdp_session(page)  # a slow uplink, so the reload lands in the middle
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20, "downloadThroughput": -1,
                                                   "uploadThroughput": 400 * 1024})
    page.set_input_files("#upload-file", str(source))
    page.click("#upload-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('upload-progress').value >= 25", timeout=30000)
    assert len(initiates()) == 1  # InitiateMultipartUpload, recognised by the same pattern as below
    page.reload()
    page.wait_for_selector('tr[data-key="exampledir/exampleobject.txt"]')
    saved = json.loads(page.evaluate("""() => Object.keys(sessionStorage).filter(k => k.startsWith('portal.upload.'))
        .map(k => sessionStorage.getItem(k))[0]"""))
    done_before = len(saved["doneParts"])
    assert 0 < done_before < 31
    seen.clear()
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": -1})
    page.set_input_files("#upload-file", str(source))  # the same file chosen again
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector(f'tr[data-key="{key}"]', timeout=30000)
    parts = [url for url in seen if "partNumber=" in url]
    assert initiates() == [] and parts and all(f"uploadId={saved['uploadId']}" in url for url in parts)
    assert len(parts) <= 31 - done_before + 3  # only what was missing (a part in flight may be sent again)
    assert root_bucket(apikey_stack).get_object(key).read() == body


def test_an_out_of_scope_attempt_is_refused_in_words_with_the_request_id(page, apikey_stack, console):
    sign_in_with_key(page, apikey_stack)
    console.expect(r"status of 403")  # the browser logs the refused request itself
    page.fill("#key-name", "exampleobject.txt")  # outside exampledir/
    page.click("#open-key button[type=submit]")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error-text") == "This file is outside what you may access."
    assert page.inner_text("#error-request-id").startswith("1-")
    screenshot(page, "portal-error")
    page.click("#error-close")
    assert page.is_hidden("#error")
    console.expect(r"status of 404")
    page.fill("#key-name", "exampledir/missing.txt")
    page.click("#open-key button[type=submit]")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error-text") == "This file does not exist (any more)."
    assert page.inner_text("#error-request-id") not in ("", "-")
    assert page.url == apikey_stack.portal_url  # the page stayed


def test_a_wrong_key_and_a_throttled_answer_are_said_in_words(page, apikey_stack, console):
    console.expect(r"status of (401|503)")
    page.goto(apikey_stack.portal_url)
    page.fill("#api-key", "demo-not-a-key")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error-text") == "Your sign-in has expired or is not valid. Please sign in again."
    assert page.inner_text("#error-request-id").startswith("1-")
    assert page.is_visible("#key-form")  # asked to sign in again
    page.click("#error-close")
    page.fill("#api-key", apikey_stack.secrets.api_key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector('tr[data-key="exampledir/exampleobject.txt"]')
    # What the API answers when STS throttles it (README: 503 with Retry-After), as the page receives it.
    page.route("**/sign?*", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "2", "Content-Type": "application/json"},
        body=json.dumps({"code": "ServiceUnavailable", "message": "STS is throttling; retry later",
                         "requestId": "1-5f0c1d2e-0123456789abcdef01234567"})))
    row(page, "exampledir/exampleobject.txt").locator("button.download").click()
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error-text") == "Too many requests right now. Please wait a moment and try again."
    assert page.inner_text("#error-request-id") == "1-5f0c1d2e-0123456789abcdef01234567"


def test_languages_follow_the_browser_and_can_be_switched(browser, console, apikey_stack):
    page = open_page(browser, console, locale="zh-CN")
    try:
        page.goto(apikey_stack.portal_url)
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.inner_text("h1") == "共享文件" and page.evaluate("document.documentElement.lang") == "zh-CN"
        page.select_option("#language", "en")
        assert page.inner_text("h1") == "Shared files"
        page.reload()  # the choice is kept for the tab
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.inner_text("h1") == "Shared files"
    finally:
        page.context.close()
    assert console.unexpected() == []


def test_keyboard_only_and_phone_width(browser, console, apikey_stack):
    page = open_page(browser, console, viewport={"width": 375, "height": 740})
    try:
        page.goto(apikey_stack.portal_url)
        page.wait_for_selector("#key-form:not([hidden])")
        for _ in range(10):  # Tab until the key field has the focus
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "api-key":
                break
        assert page.evaluate("document.activeElement.id") == "api-key"
        page.keyboard.type(apikey_stack.secrets.api_key)
        page.keyboard.press("Enter")
        page.wait_for_selector('tr[data-key="exampledir/exampleobject.txt"]')
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        screenshot(page, "portal-phone")
    finally:
        page.context.close()
    assert console.unexpected() == []


def test_oidc_sign_in_and_a_refresh_that_keeps_the_page(browser, console, oidc_stack):
    page = open_page(browser, console, origin=oidc_stack.gateway.url)
    idp = oidc_stack.idp
    try:
        page.goto(oidc_stack.portal_url)
        page.click("#oidc-sign-in")
        page.wait_for_selector("#approve")  # the provider's consent page
        assert page.url.startswith(idp.issuer + "/authorize") and "code_challenge_method=S256" in page.url
        page.click("#approve")
        page.wait_for_selector('tr[data-key="users/demo/hello.txt"]')
        assert "code=" not in page.url and page.evaluate("localStorage.length") == 0
        assert idp.counts["authorization_code"] == 1
        claims = json.loads(page.evaluate("sessionStorage.getItem('portal.auth')"))
        assert claims["kind"] == "oidc" and claims["subject"] == "demo"
        page.evaluate("window.keptPage = 'still here'")
        time.sleep(IDP_TOKEN_LIFETIME + 2)  # the first token has expired (no leeway on this stack)
        assert claims["expiresAt"] / 1000 < time.time()
        row(page, "users/demo/hello.txt").locator("button.share").click()
        page.click("#share-create")
        page.wait_for_selector("#share-result:not([hidden])")
        assert fetch(page.input_value("#share-url")) == DEMO_OBJECTS["users/demo/hello.txt"]
        assert idp.counts["refresh_token"] >= 1
        assert page.evaluate("window.keptPage") == "still here"  # refreshed in place, no reload
        screenshot(page, "portal-oidc")
    finally:
        page.context.close()
    assert console.unexpected() == []
