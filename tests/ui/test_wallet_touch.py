"""The card on the member's phone, by touch on a terminal paired with a real store server:
the member screen's "Card on your phone" shows a QR code; read by a phone's camera (here
zxing-cpp on the image shown) it is the server's link, which gives the member's Apple pass
(its signature verified by OpenSSL) whose barcode is the member's number. On a terminal
with an embedded ledger the button is not offered."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import zxingcpp
from PIL import Image

from pos_client.bootstrap import build_app, run_terminal
from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import BackendKind
from tests.integration.server_helpers import ServerProcess
from tests.integration.test_wallet_passes import opened, openssl_verifies
from tests.pass_keys import PassKeys, apple_env, make_pass_keys, started_pass_server
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.dialogs import WalletDialog, shown_dialog
from ui.touch import TouchError, find_widget, hidden_because, tap, tap_keys

ANNA = DEMO_MEMBERS[0]


@pytest.fixture
def keys(tmp_path: Path) -> PassKeys:
    return make_pass_keys(tmp_path / "keys")


@pytest.fixture
def server(keys: PassKeys, tmp_path: Path) -> Iterator[ServerProcess]:
    store = started_pass_server(tmp_path / "server", apple_env(keys, tmp_path / "server"))
    try:
        yield store
    finally:
        store.stop()


def test_the_member_shows_a_qr_code_the_phone_opens_to_their_wallet_pass(
    server: ServerProcess, keys: PassKeys, tmp_path: Path
) -> None:
    data = tmp_path / "terminal"
    settings = ui_settings(data)
    data.mkdir(parents=True, exist_ok=True)
    (data / "terminal.token").write_text(server.pair("kiosk")["token"])
    settings = replace(
        settings, backend=replace(settings.backend, kind=BackendKind.HTTP, url=server.url)
    )
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield from tap(text=app.tr("member.wallet"))
        yield lambda: shown_dialog(WalletDialog) is not None
        yield 0.2
        dialog = shown_dialog(WalletDialog)
        seen["image"] = dialog.image
        seen["scan_text"] = hidden_because(find_widget(text=app.tr("wallet.scan"))) is None
        yield from tap(text=app.tr("common.close"))
        yield lambda: shown_dialog(WalletDialog) is None

    from ui.script import run_app_with_script

    with run_terminal(settings) as running:
        run_app_with_script(build_app(settings, running), script)
    assert seen["scan_text"]
    (code,) = zxingcpp.read_barcodes(Image.open(seen["image"]))  # the phone's camera
    assert code.text.startswith(server.url + "/v1/passes/")
    page = requests.get(code.text, timeout=10)  # the phone opens the link: no token
    assert page.status_code == 200 and "Add to Apple Wallet" in page.text
    files = opened(requests.get(code.text + "/apple.pkpass", timeout=10).content)
    assert openssl_verifies(files, keys, tmp_path)
    assert f'"message": "{ANNA.card_number}"' in files["pass.json"].decode()


def test_an_embedded_terminal_offers_no_phone_card(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        try:
            yield from tap(text=app.tr("member.wallet"))
            seen["tapped"] = True
        except TouchError as exc:
            seen["refused"] = str(exc)

    run_ui(ui_settings(tmp_path), script)
    assert "tapped" not in seen and seen["refused"]


def test_a_new_member_gets_the_phone_card_right_after_joining(
    server: ServerProcess, tmp_path: Path
) -> None:
    from tests.ui.test_enroll_kiosk import to_enroll

    data = tmp_path / "terminal"
    settings = ui_settings(data)
    data.mkdir(parents=True, exist_ok=True)
    (data / "terminal.token").write_text(server.pair("kiosk")["token"])
    settings = replace(
        settings, backend=replace(settings.backend, kind=BackendKind.HTTP, url=server.url)
    )
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_enroll(app)
        enroll = app.sm.get_screen("enroll")
        yield from tap_keys("Dana")
        yield from tap(text=tr("enroll.next"))
        yield from tap(text=tr("enroll.consent"))
        yield from tap(text=tr("enroll.join"))
        yield lambda: bool(enroll.card_number)
        seen["number"] = enroll.card_number
        yield lambda: app.status_pending == 0  # the enrollment reached the server
        yield from tap(text=tr("member.wallet"))
        yield lambda: shown_dialog(WalletDialog) is not None
        seen["image"] = shown_dialog(WalletDialog).image

    from ui.script import run_app_with_script

    with run_terminal(settings) as running:
        run_app_with_script(build_app(settings, running), script)
    (code,) = zxingcpp.read_barcodes(Image.open(seen["image"]))
    files = opened(requests.get(code.text + "/apple.pkpass", timeout=10).content)
    assert f'"message": "{seen["number"]}"' in files["pass.json"].decode()
