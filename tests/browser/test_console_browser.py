"""A manager and an auditor use the store console in Chromium, clicking and typing as people
do, against the store server as a real process and a real terminal (`pos-client run
--headless`, HTTP backend) that pairs and syncs with it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase, uuid7
from pos_client.operations import SaleOp
from pos_client.program_updates import PROGRAM_CACHE_FILE
from tests.browser.conftest import PHONE, start_browser
from tests.conftest import REPO, HeadlessTerminal
from tests.console_client import PASSWORD
from tests.integration.server_helpers import ServerProcess

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
PAGES = {
    "dashboard": "/console/",
    "members": "/console/members",
    "terminals": "/console/terminals",
    "dead-letters": "/console/dead-letters",
    "flags": "/console/flags",
    "program": "/console/program",
    "exports": "/console/exports",
    "audit": "/console/audit",
}


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}")


def sign_in(driver: Any, store: ServerProcess, name: str, password: str = PASSWORD) -> None:
    driver.delete_all_cookies()
    driver.get(store.url + "/console/login")
    by_id(driver, "name").send_keys(name)
    by_id(driver, "password").send_keys(password)
    by_id(driver, "sign-in").click()
    wait_for(lambda: css(driver, "#signed-in-as, #error"), what="the sign-in's answer")


def submit_button(form: Any) -> Any:
    from selenium.webdriver.common.by import By

    return form.find_element(By.CSS_SELECTOR, "button[type=submit]")


def text_of(driver: Any, selector: str) -> str:
    """The first match's text, or "" (none yet, or the page was replaced meanwhile)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        found = css(driver, selector)
        return str(found[0].text) if found else ""
    except StaleElementReferenceException:
        return ""


def not_blank(path: Path) -> None:
    from PIL import Image, ImageStat

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1_000_000) or []
        spread = ImageStat.Stat(rgb.convert("L")).stddev[0]
    assert len(colours) > 30 and spread > 10, f"{path.name} looks blank"


def console_errors(driver: Any) -> list[str]:
    """What the page's console said at SEVERE level: a CSP refusal, a missing file, a
    script error."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture
def page_of(browser: Any, store: ServerProcess) -> Iterator[Callable[[str], None]]:
    def go(name: str) -> None:
        browser.get(store.url + PAGES.get(name, name))

    yield go


def test_a_manager_signs_in_and_every_page_renders_on_a_desk_and_on_a_phone(
    browser: Any, store: ServerProcess, screenshots: Path
) -> None:
    sign_in(browser, store, "maria")
    wait_for(lambda: "/console/" in browser.current_url and css(browser, "#signed-in-as"))
    assert by_id(browser, "signed-in-as").text == "maria (manager)"
    for name, path in PAGES.items():
        browser.get(store.url + path)
        assert css(browser, "h1"), name
        shot = screenshots / f"console-{name}.png"
        browser.save_screenshot(str(shot))
        not_blank(shot)
    assert console_errors(browser) == []
    phone = start_browser(PHONE)
    try:
        sign_in(phone, store, "maria")
        wait_for(lambda: css(phone, "#signed-in-as"))
        for name, path in PAGES.items():
            phone.get(store.url + path)
            wide = phone.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert wide <= 1, f"{name} is {wide}px wider than a phone's screen"
        phone.get(store.url + "/console/")
        shot = screenshots / "console-dashboard-phone.png"
        phone.save_screenshot(str(shot))
        not_blank(shot)
    finally:
        phone.quit()
    # The language links turn the pages Russian, Ukrainian, Greek and back.
    browser.get(store.url + "/console/")
    for code in ("ru", "uk", "el", "en"):
        css(browser, f'a.lang[href*="to={code}"]')[0].click()
        wait_for(
            lambda code=code: browser.find_element("tag name", "html").get_attribute("lang") == code
        )
    assert by_id(browser, "signed-in-as").text == "maria (manager)"


def test_a_wrong_password_locks_the_account_after_five_tries(
    browser: Any, store: ServerProcess
) -> None:
    for attempt in range(5):
        sign_in(browser, store, "lena", f"not her password {attempt}")
        message = by_id(browser, "error").text
        assert ("locked until" in message) == (attempt == 4), message
    sign_in(browser, store, "lena")  # the right password, while locked
    assert "locked until" in by_id(browser, "error").text
    assert not css(browser, "#signed-in-as")


def test_a_manager_finds_a_member_by_phone_adjusts_points_and_sees_the_audit_entry(
    browser: Any, store: ServerProcess, page_of: Callable[[str], None], screenshots: Path
) -> None:
    sign_in(browser, store, "maria")
    page_of("members")
    by_id(browser, "search-phone").send_keys(BOB.phone)
    by_id(browser, "search-phone-go").click()
    link = wait_for(lambda: css(browser, "#results a"), what="a result")
    assert "Bob Smith" in link[0].text
    link[0].click()
    wait_for(lambda: css(browser, "#balance"))
    before = int(re.sub(r"\D", "", by_id(browser, "balance").text))
    browser.save_screenshot(str(screenshots / "console-member.png"))
    by_id(browser, "adjust-points").send_keys("150")
    by_id(browser, "adjust-reason").send_keys("Receipt 4471 was not scanned")
    by_id(browser, "adjust-go").click()
    wait_for(lambda: css(browser, "#notice"), what="the notice")
    assert by_id(browser, "notice").text == "Points adjusted."
    assert int(re.sub(r"\D", "", by_id(browser, "balance").text)) == before + 150
    page_of("audit")
    first = css(browser, "#audit tbody tr")[0].text
    assert "maria" in first and "adjust" in first and "Receipt 4471 was not scanned" in first
    assert "+150 points" in first


def test_a_form_posted_without_its_csrf_token_is_refused(
    browser: Any, store: ServerProcess, page_of: Callable[[str], None]
) -> None:
    sign_in(browser, store, "maria")
    page_of("terminals")
    before = len(css(browser, "#fleet tbody tr"))
    browser.execute_script(
        "document.querySelector('form[action=\"/console/terminals\"] input[name=csrf]').remove()"
    )
    by_id(browser, "new-terminal").send_keys("Sneaky till")
    by_id(browser, "pair-go").click()
    assert "not sent by the console" in wait_for(lambda: css(browser, "#error"))[0].text
    page_of("terminals")
    assert len(css(browser, "#fleet tbody tr")) == before
    assert "Sneaky till" not in browser.page_source


def test_an_auditor_reads_but_cannot_change_anything(
    browser: Any, store: ServerProcess, page_of: Callable[[str], None]
) -> None:
    sign_in(browser, store, "otto")
    wait_for(lambda: css(browser, "#signed-in-as"))
    page_of("members")
    by_id(browser, "search-card").send_keys(ANNA.card_number)
    by_id(browser, "search-card-go").click()
    wait_for(lambda: css(browser, "#results a"))[0].click()
    wait_for(lambda: css(browser, "#balance"))
    assert not css(browser, "#adjust-form") and not css(browser, "#block-go")
    member_url = browser.current_url
    balance = by_id(browser, "balance").text
    for name in ("terminals", "program", "flags"):
        page_of(name)
        assert not css(browser, "form[action^='/console/'] input[name=reason]")
        assert not css(browser, "#pair-go") and not css(browser, "#program-preview")
    # The auditor writes the form the page left out, with their own CSRF token: refused.
    browser.get(member_url)
    browser.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post';
        form.action = location.pathname + '/adjust';
        const fields = {csrf: document.querySelector('input[name=csrf]').value,
                        points: '999', reason: 'helping myself', key: 'k-1'};
        for (const [name, value] of Object.entries(fields)) {
            const input = document.createElement('input');
            input.name = name; input.value = value; form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
        """
    )
    assert "auditor" in wait_for(lambda: css(browser, "#error"))[0].text
    browser.get(member_url)
    assert by_id(browser, "balance").text == balance


def test_a_paired_terminal_appears_with_its_heartbeat_and_picks_up_an_uploaded_programme(
    browser: Any,
    store: ServerProcess,
    page_of: Callable[[str], None],
    screenshots: Path,
    tmp_path: Path,
) -> None:
    import zxingcpp
    from PIL import Image

    sign_in(browser, store, "maria")
    page_of("terminals")
    by_id(browser, "new-terminal").send_keys("Till by the window")
    by_id(browser, "pair-go").click()
    code = wait_for(lambda: css(browser, "#pairing-code"))[0].text
    command = by_id(browser, "pair-command").text
    assert command == f"pos-client pair {store.url} {code}"
    qr = tmp_path / "qr.png"
    by_id(browser, "pairing-qr").screenshot(str(qr))
    with Image.open(qr) as image:
        assert [found.text for found in zxingcpp.read_barcodes(image)] == [command]
    browser.save_screenshot(str(screenshots / "console-pairing.png"))
    data = tmp_path / "till"
    paired = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(data), "pair", store.url, code],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert paired.returncode == 0, paired.stderr
    terminal = HeadlessTerminal(
        "--data-dir",
        str(data),
        env={
            "POS_CLIENT__BACKEND__KIND": "http",
            "POS_CLIENT__BACKEND__URL": store.url,
            "POS_CLIENT__SYNC__INTERVAL_S": "1",
        },
    )
    try:

        def heard() -> bool:
            page_of("terminals")
            row = css(browser, '#fleet tr[data-terminal="Till by the window"] td.mode')
            return bool(row and row[0].text == "cashier")

        wait_for(heard, 60, "the terminal's heartbeat on the fleet page")
        row = css(browser, '#fleet tr[data-terminal="Till by the window"]')[0]
        assert "0.1.0" in row.text and "never" not in row.text
        browser.save_screenshot(str(screenshots / "console-terminals.png"))

        # A new programme: 5 points a dollar, uploaded, previewed, scheduled a little ahead.
        source = (REPO / "config/programs/category_tiers.toml").read_text()
        spring = tmp_path / "spring.toml"
        spring.write_text(source.replace("rate = 1\n", "rate = 5\n", 1))
        page_of("program")
        before = by_id(browser, "active-version").text
        by_id(browser, "program-file").send_keys(str(spring))
        when = datetime.now(UTC) + timedelta(seconds=20)  # the store's zone is UTC here
        browser.execute_script(
            "document.getElementById('program-when').value = arguments[0]",
            when.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        by_id(browser, "program-preview").click()
        changes = wait_for(lambda: css(browser, "#changes li"), what="the preview")
        assert any("5" in item.text for item in changes)
        browser.save_screenshot(str(screenshots / "console-program-preview.png"))
        by_id(browser, "program-reason").send_keys("Spring promotion")
        by_id(browser, "program-activate").click()
        # The preview's page has a versions table too: wait for the answer's notice.
        wait_for(lambda: "scheduled" in text_of(browser, "#notice"), what="the notice")
        assert "scheduled" in [cell.text for cell in css(browser, "#versions td.status")]

        def adopted() -> str | None:
            cached = data / PROGRAM_CACHE_FILE
            text = cached.read_text() if cached.exists() else ""
            page_of("program")
            now = by_id(browser, "active-version").text
            return now if now != before and now in text else None

        version = wait_for(adopted, 120, "the terminal to adopt the new programme")
        assert version != before
    finally:
        terminal.stop(15)


def test_a_manager_approves_a_flagged_day(
    browser: Any, store: ServerProcess, page_of: Callable[[str], None], screenshots: Path
) -> None:
    token = store.pair("flagging till")["token"]
    ledger = store.ledger()
    anna = ledger.find_member_id("card_number", ANNA.card_number)
    ledger.engine.dispose()
    assert anna
    sales = [
        SaleOp(uuid7(), anna, "T", datetime.now(UTC), Purchase.of_amount(Decimal("5.00"))).to_body()
        for _ in range(4)
    ]
    requests.post(
        store.url + "/v1/operations/batch",
        json={"operations": sales},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).raise_for_status()
    sign_in(browser, store, "maria")
    page_of("flags")
    row = wait_for(lambda: css(browser, f'#flags tr[data-member="{anna}"]'))[0]
    browser.save_screenshot(str(screenshots / "console-flags.png"))
    from selenium.webdriver.common.by import By

    row.find_element(By.CSS_SELECTOR, "input.flag-reason").send_keys("Family shopping, fine")
    row.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait_for(
        lambda: "approved (maria)" in text_of(browser, f'#flags tr[data-member="{anna}"]'),
        what="the decision",
    )
    page_of("audit")
    assert "Family shopping, fine" in css(browser, "#audit tbody tr")[0].text
