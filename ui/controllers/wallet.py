"""The member's card on their phone: the store server's short-lived link to the member's
wallet passes, shown as a QR code for the member's phone camera (a store server only: an
embedded ledger makes no passes, and the button is not shown)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pos_client.checkout import Checkout
from ui.controllers.navigation import Navigator
from ui.controllers.state import Activity, Customer
from ui.controllers.texts import Texts

log = logging.getLogger(__name__)


def qr_image(text: str, out: Path) -> Path:
    """The text as a QR code, black on white with its quiet zone, written as PNG."""
    import qrcode

    out.parent.mkdir(parents=True, exist_ok=True)
    qrcode.make(text, box_size=8, border=4).save(out)
    return out


class WalletController:
    def __init__(
        self,
        checkout: Checkout,
        nav: Navigator,
        texts: Texts,
        customer: Customer,
        activity: Activity,
        images: Path,
    ) -> None:
        self._checkout = checkout
        self._nav = nav
        self._texts = texts
        self._customer = customer
        self._activity = activity
        self._images = images
        self.dialog: Any = None
        self._shown = 0

    def show(self) -> None:
        """Ask the store server for the member's link (off the clock), then show it."""
        session = self._customer.session
        if session is None:
            return
        self._activity.touch()

        def done(url: Any, error: BaseException | None) -> None:
            if self._customer.session is not session:
                return  # the member left meanwhile: show nothing of theirs
            if error is not None:
                log.info("no wallet pass link: %s", error)
                self._nav.show_message(self._texts.error(error))
                return
            from ui.dialogs import WalletDialog

            self._shown += 1
            image = qr_image(str(url), self._images / f"wallet-{self._shown}.png")
            self.dialog = WalletDialog(str(image))
            self.dialog.open(animation=False)

        self._nav.run_async(lambda: self._checkout.pass_link(session), done)
