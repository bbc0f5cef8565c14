from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from ui.screens.base import PosScreen


class AdminScreen(PosScreen):
    """Staff only, behind a PIN with lockout: readers, outbox, retry, sync, language, mode."""

    pin_display = StringProperty("")
    error = StringProperty("")
    unlocked = BooleanProperty(False)
    readers_text = StringProperty("")
    outbox_text = StringProperty("")

    def refresh(self) -> None:
        self.unlocked = False
        self.pin = ""
        self.pin_display = ""
        self.error = ""

    def language_changed(self) -> None:
        """Staff switch the language from this screen: it stays unlocked, the report is said
        again in the new language."""
        self.error = ""
        if self.unlocked:
            self.update()

    def key(self, key: str) -> None:
        if key == "back":
            self.pin = self.pin[:-1]
        elif key.isdigit() and len(self.pin) < 12:
            self.pin += key
        self.pin_display = "•" * len(self.pin)

    def submit(self) -> None:
        problem = self.pos_app.staff.unlock(self.pin)
        if problem is None:
            self.unlocked = True
        self.error = problem or ""
        self.pin = ""
        self.pin_display = ""
        if self.unlocked:
            self.update()

    def update(self) -> None:
        self.readers_text, self.outbox_text = self.pos_app.staff.report()

    def retry(self) -> None:
        self.pos_app.staff.retry()
        self.update()

    def sync_now(self) -> None:
        self.pos_app.staff.sync_now()
        self.update()

    def reprint(self) -> None:
        self.pos_app.printer.reprint_said()

    def toggle_mode(self) -> None:
        self.pos_app.staff.toggle_mode()

    def exit(self) -> None:
        self.pos_app.staff.exit()
