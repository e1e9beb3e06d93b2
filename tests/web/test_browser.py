"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright;
no browser is ever downloaded) against Django's live server."""

import json
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need /usr/bin/chromium "
                       "(apt-get install chromium fonts-noto-cjk)"),
]


@pytest.fixture
def browser():
    # Playwright's sync API keeps an event loop on this thread; the test's own database
    # reads around it are synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def sign_in(page, live_server, staff, path="/login/"):
    page.goto(f"{live_server.url}{path}")
    page.fill("input[name=username]", staff.user.username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_an_operator_signs_in_builds_a_segment_and_sees_its_count(shop, live_server,
                                                                  browser):
    page = browser.new_page(locale="zh-CN")
    sign_in(page, live_server, shop["staff"]["owner"])
    assert "/dashboard/" in page.url
    page.goto(f"{live_server.url}/segments/new/")
    page.select_option(".sb-group .sb-add-kind", "store")
    page.click(".sb-group [data-sb=add]")
    page.select_option(".sb-leaf[data-kind=store] [data-role=value]", "SH001")
    page.wait_for_selector("#sb-count [data-count]")
    assert page.inner_text("#sb-count").strip().startswith("1")
    page.select_option(".sb-group .sb-add-kind", "field")
    page.click(".sb-group [data-sb=add]")
    page.select_option(".sb-leaf[data-kind=field] [data-role=field]", "city")
    page.fill(".sb-leaf[data-kind=field] [data-role=value]", "杭州")
    page.wait_for_selector("#sb-count [data-count='0']")  # a selector: CSP forbids eval
    expression = json.loads(page.input_value("#expression"))
    assert expression == {"all": [{"store": "SH001"},
                                  {"field": "city", "op": "eq", "value": "杭州"}]}


def test_a_guide_on_a_phone_tags_a_customer_and_writes_a_note(shop, live_server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                            locale="zh-CN")
    sign_in(page, live_server, shop["staff"]["guide"], "/guide/login/")
    assert page.url.endswith("/guide/")
    page.click("text=王芳")
    page.wait_for_selector("#member-tags .tap-tags button")
    page.click("#member-tags .tap-tags button:has-text('护肤达人')")
    page.wait_for_selector("#member-tags button.on:has-text('护肤达人')")
    page.fill("#notes textarea", "喜欢清爽型面霜，周末到店")
    page.click("#notes button[type=submit]")
    page.wait_for_selector("#notes .note:has-text('喜欢清爽型面霜')")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone


def test_a_guide_of_another_store_cannot_open_that_customer(shop, live_server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                            locale="zh-CN")
    sign_in(page, live_server, shop["staff"]["other_guide"], "/guide/login/")
    assert "王芳" not in page.content()
    response = page.goto(f"{live_server.url}/guide/customers/{shop['mine'].pk}/")
    assert response.status == 404
    assert "未找到" in page.content()


def test_an_operator_creates_a_coupon_campaign_and_sees_it_run(shop, live_server, browser):
    page = browser.new_page(locale="zh-CN")
    sign_in(page, live_server, shop["staff"]["owner"])
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("input[name=name]", "上海新客满减")
    page.select_option("select[name=segment]", str(shop["segment"].pk))
    page.select_option("select[name=coupon]", "welcome20")
    page.wait_for_selector("[data-review-members='1']")
    page.click("button[name=launch]")
    page.wait_for_selector("[data-status='completed']", timeout=20_000)
    assert page.inner_text("[data-reached]").strip() == "1"


def test_a_guide_on_a_phone_sends_their_customer_a_coupon(shop, live_server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                            locale="zh-CN")
    sign_in(page, live_server, shop["staff"]["guide"], "/guide/login/")
    page.click("text=王芳")
    page.wait_for_selector("#member-coupons select[name=template]")
    page.select_option("#member-coupons select[name=template]", str(shop["coupon"].pk))
    page.click("#member-coupons button:has-text('发送')")
    page.wait_for_selector("#member-coupons .alert.ok")
    assert "满100减20" in page.inner_text("#member-coupons table")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
