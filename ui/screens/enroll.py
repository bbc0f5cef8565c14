from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, OptionProperty, StringProperty

from ui import forms  # also registers NameKeyboard and ConsentToggle for enroll.kv
from ui.dialogs import TermsDialog
from ui.screens.base import PosScreen


class EnrollScreen(PosScreen):
    """Phone not found: join in two steps — the first name (on-screen keyboard), then the
    terms (readable here) and consent — and the new card as a barcode with a welcome."""

    phone_hint = StringProperty("")
    error = StringProperty("")
    card_image = StringProperty("")
    card_number = StringProperty("")
    welcome_text = StringProperty("")
    step = OptionProperty("name", options=["inviter", "name", "birthday", "consent", "joined"])
    inviter_digits = StringProperty("")  # the inviting member's phone, as typed
    inviter_text = StringProperty("")
    inviter_id = StringProperty("")  # found: the member who invites
    invited_text = StringProperty("")  # "Invited by Anna K."
    birthday_digits = StringProperty("")  # DDMMYYYY as typed
    birthday_text = StringProperty("")
    guardian_needed = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The three steps are built once by enroll.kv; one of them is in `body` at a time.
        # `ids` holds weak proxies: keep the steps themselves (`__self__`) while detached.
        self._steps = {
            "inviter": self.ids.inviter_step.__self__,
            "name": self.ids.name_step.__self__,
            "birthday": self.ids.birthday_step.__self__,
            "consent": self.ids.consent_step.__self__,
            "joined": self.ids.joined_step.__self__,
        }
        self._show_step()

    def refresh(self) -> None:
        self.error = ""
        self.card_image = ""
        self.card_number = ""
        self.welcome_text = ""
        self.ids.first_name.text = ""
        self.ids.consent.active = False
        self.ids.marketing.active = False
        self.ids.guardian.active = False
        self.guardian_needed = False
        self.birthday_digits = ""
        self.inviter_digits = ""
        self.inviter_id = ""
        self.invited_text = ""
        self.step = "inviter" if self.pos_app.sale.invitation_needed() else "name"

    def on_step(self, *_args: Any) -> None:
        self._show_step()

    def on_card_number(self, *_args: Any) -> None:
        if self.card_number:
            self.step = "joined"

    def _show_step(self) -> None:
        body = self.ids.body
        body.clear_widgets()
        body.add_widget(self._steps[self.step])

    def typed(self, key: str) -> None:
        """A key of the on-screen keyboard into the name field."""
        field = self.ids.first_name
        field.text = forms.typed(field.text, key)
        field.cursor = (len(field.text), 0)
        self.error = ""

    def on_kv_post(self, base_widget: Any) -> None:
        field = self.ids.first_name
        keyboard = self.ids.keyboard
        field.bind(text=lambda _w, text: setattr(keyboard, "capital", forms.starts_word(text)))
        self.ids.consent.bind(active=self._consent_changed)

    def _consent_changed(self, _toggle: Any, active: bool) -> None:
        """Consent ticked: the error asking for it is no longer true."""
        if active and self.error == self.tr("error.consent_required"):
            self.error = ""

    def next_step(self) -> None:
        if not self.ids.first_name.text.strip():
            self.error = self.tr("error.name_required")
            return
        self.error = ""
        self.step = "birthday" if self.pos_app.sale.birthday_needed() else "consent"

    def on_birthday_digits(self, *_args: Any) -> None:
        self.birthday_text = forms.birthday_as_typed(self.birthday_digits)

    def birthday_key(self, key: str) -> None:
        """A key of the keypad into the birthday (day, month, year)."""
        if key == "back":
            self.birthday_digits = self.birthday_digits[:-1]
        elif key.isdigit() and len(self.birthday_digits) < 8:
            self.birthday_digits += key
        self.error = ""

    def birthday_done(self) -> None:
        """A whole, possible birthday old enough to join (or with a guardian): to consent."""
        problem, guardian = self.pos_app.sale.birthday_problem(self.birthday_digits)
        self.error = problem or ""
        if problem is None:
            self.guardian_needed = guardian
            self.step = "consent"

    def back(self) -> None:
        self.error = ""
        if self.step == "consent" and self.pos_app.sale.birthday_needed():
            self.step = "birthday"
        elif self.step in ("consent", "birthday"):
            self.step = "name"
        elif self.step == "name" and self.pos_app.sale.invitation_needed():
            self.step = "inviter"
        else:
            self.pos_app.nav.go_idle()

    def inviter_key(self, key: str) -> None:
        """A key of the keypad into the inviting member's phone."""
        if key == "back":
            self.inviter_digits = self.inviter_digits[:-1]
        elif key == "+" and not self.inviter_digits:
            self.inviter_digits = "+"
        elif key.isdigit() and len(self.inviter_digits) < 16:
            self.inviter_digits += key
        self.error = ""
        self.inviter_text = self.pos_app.member.format_phone_as_typed(self.inviter_digits)

    def inviter_done(self) -> None:
        """Look the inviting member up (off the clock); found, on to the name."""
        self.pos_app.sale.find_inviter(self.inviter_digits)

    def show_terms(self) -> None:
        TermsDialog().open(animation=False)

    def join(self) -> None:
        self.error = (
            self.pos_app.sale.enroll(
                self.ids.first_name.text,
                self.ids.consent.active,
                self.ids.marketing.active,
                birthday_digits=self.birthday_digits,
                guardian=self.guardian_needed and self.ids.guardian.active,
                invited_by=self.inviter_id,
            )
            or ""
        )

    def done(self) -> None:
        """To the new member's screen."""
        self.pos_app.nav.go("member")
