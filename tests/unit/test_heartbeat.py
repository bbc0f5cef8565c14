"""The heartbeat a terminal builds: always within the store server's bounds, whatever its
readers, dead entries or version say; sent every 30 s at most; readers' states followed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loyalty_server.heartbeats import HeartbeatIn, readers_text
from pos_client.events import EventBus, ReaderStatus
from pos_client.heartbeat import (
    DeadNote,
    Heartbeat,
    HeartbeatPolicy,
    ReaderNote,
    ReaderStates,
    app_version,
    dead_reason,
    shown_text,
)


@given(st.text(max_size=300), st.integers(min_value=1, max_value=200))
def test_shown_text_is_always_text_the_server_takes(value: str, limit: int) -> None:
    text = shown_text(value, limit)
    assert 1 <= len(text) <= limit
    beat = Heartbeat(
        app_version=shown_text(value, 40),
        mode="kiosk",
        pending=0,
        dead=1,
        oldest_pending_s=None,
        readers=(ReaderNote(shown_text(value, 60), shown_text(value, 60)),),
        dead_entries=(DeadNote(shown_text(value, 64), dead_reason(value, value), 0),),
    )
    HeartbeatIn.model_validate(beat.to_json())  # raises if the server would refuse it


def test_control_and_bidi_characters_are_shown_as_question_marks() -> None:
    assert shown_text("ok\x00\u202egone\n", 40) == "ok??gone?"
    assert shown_text("   ", 10) == "?"
    assert shown_text("e\u0301\u0301\u0301", 10) == "e"  # marks dropped: no runs of them
    assert dead_reason("unknown_member", "no member m-1") == "unknown_member: no member m-1"
    assert dead_reason(None, None) == "refused"
    assert len(dead_reason("c", "x" * 500)) == 200


def test_the_version_is_the_packages() -> None:
    assert app_version() == "0.1.0"


def test_heartbeats_are_due_every_interval_at_most() -> None:
    now = [100.0]
    policy = HeartbeatPolicy(mode="cashier", version="1", monotonic=lambda: now[0])
    assert policy.due()
    now[0] += 29.9
    assert not policy.due()
    now[0] += 0.1
    assert policy.due()
    assert not policy.due()


def test_readers_states_follow_their_events_never_their_details() -> None:
    bus = EventBus()
    states = ReaderStates(bus)
    assert states() == []
    bus.publish(ReaderStatus("serial:front", "connected", "/dev/ttyACM0"))
    bus.publish(ReaderStatus("pcsc:ACR122U", "connected"))
    bus.publish(ReaderStatus("serial:front", "error", "unplugged"))
    assert states() == [("pcsc:ACR122U", "connected"), ("serial:front", "error")]
    for index in range(20):
        bus.publish(ReaderStatus(f"wedge:{index:02}", "connected"))
    assert len(states()) == 8


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60)),
        max_size=8,
    )
)
def test_the_readers_column_never_overflows(readers: list[tuple[str, str]]) -> None:
    assert len(readers_text(readers)) <= 400
