"""Modal dialogs: the confirmation before points are spent, and the programme terms.

A `ModalView` sits on the window above every screen and takes every touch while open, so
nothing under it can be pressed; it never dismisses itself on a touch outside (a customer's
stray tap must not decide anything), and it closes when the screen under it changes (the
member left, the terminal went back to idle). Layout in dialogs.kv.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.lang import Builder
from kivy.properties import StringProperty
from kivy.uix.modalview import ModalView

import ui.forms  # noqa: F401  (its AccountKeyboard is in dialogs.kv)
from pos_client.operations import PARTNER_ACCOUNT_MAX

KV = str(Path(__file__).with_name("dialogs.kv"))


class ScreenBoundDialog(ModalView):
    """A modal that closes when the app shows another screen."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("auto_dismiss", False)
        super().__init__(**kwargs)
        self._sm: Any = None

    def on_open(self) -> None:
        app = App.get_running_app()
        guard = getattr(getattr(app, "input", None), "guard", None)
        if guard is not None:  # the second tap of a double tap must not answer the dialog
            guard.arm()
        self._sm = getattr(app, "sm", None)
        if self._sm is not None:
            self._sm.bind(current=self._screen_changed)

    def on_dismiss(self) -> None:
        if self._sm is not None:
            self._sm.unbind(current=self._screen_changed)
            self._sm = None

    def _screen_changed(self, *_args: Any) -> None:
        self.dismiss(animation=False)


class ConfirmDialog(ScreenBoundDialog):
    """ "Redeem “$25 gift card”?" — what, how many points, the balance after — with large
    Cancel and Confirm buttons. `on_confirm` runs only on Confirm (after the dialog closed)."""

    title = StringProperty("")
    body = StringProperty("")

    def __init__(
        self, title: str, lines: Sequence[str], on_confirm: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.body = "\n".join(lines)
        self._on_confirm = on_confirm

    def cancel(self) -> None:
        self.dismiss(animation=False)

    def confirm(self) -> None:
        self.dismiss(animation=False)
        self._on_confirm()


class AccountDialog(ScreenBoundDialog):
    """The member's account number at a partner, typed on an on-screen keyboard (digits and
    Latin capitals); OK checks it (`check` returns a problem in words, or None) and hands it
    to `on_done`; Cancel keeps what was there."""

    title = StringProperty("")
    value = StringProperty("")
    error = StringProperty("")
    limit = PARTNER_ACCOUNT_MAX

    def __init__(
        self,
        title: str,
        value: str,
        check: Callable[[str], str | None],
        on_done: Callable[[str], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.value = value
        self._check = check
        self._on_done = on_done

    def key(self, key: str) -> None:
        self.value = forms_typed(self.value, key, self.limit)
        self.error = ""

    def cancel(self) -> None:
        self.dismiss(animation=False)

    def done(self) -> None:
        problem = self._check(self.value)
        if problem is not None:
            self.error = problem
            return
        self.dismiss(animation=False)
        self._on_done(self.value)


def forms_typed(text: str, key: str, limit: int) -> str:
    """The account number after one key: backspace, or a character up to the limit."""
    if key == "back":
        return text[:-1]
    return text if len(text) >= limit else text + key


class TermsDialog(ScreenBoundDialog):
    """The programme terms, scrollable, in the current language."""

    def close(self) -> None:
        self.dismiss(animation=False)


class WalletDialog(ScreenBoundDialog):
    """A QR code for the member's phone: it opens the page with their wallet passes."""

    image = StringProperty("")

    def __init__(self, image: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image

    def close(self) -> None:
        self.dismiss(animation=False)


def shown_dialog(kind: type[ModalView] = ModalView) -> Any:
    """The dialog of this kind open on the window now, or None."""
    from kivy.core.window import Window

    return next((w for w in Window.children if isinstance(w, kind)), None)


def ask(title: str, lines: Sequence[str], on_confirm: Callable[[], None]) -> ConfirmDialog:
    dialog = ConfirmDialog(title, lines, on_confirm)
    dialog.open(animation=False)
    return dialog


Builder.unload_file(KV)
Builder.load_file(KV)
