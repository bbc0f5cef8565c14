"""Request bodies parsed as hostile JSON: UTF-8 only, nesting bounded, the number of JSON
values bounded before any is made (a 2 MiB body of `{},` is 700,000 objects), large bodies
parsed a few at a time off the event loop, and integers too long to convert kept as a
marker that refuses the operation holding one, not the batch."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from pos_client.operations import MAX_NESTING, bounded_int

# Levels of objects and lists in a whole body. An operation nested deeper than MAX_NESTING
# (inside the batch's two levels) is refused alone, up to this; past it the body is refused
# whole, as the standard parser (which recurses once per level) cannot read it safely.
MAX_BODY_DEPTH = 256
TOO_DEEP = (
    f"the body is nested deeper than {MAX_BODY_DEPTH} levels (an operation may nest at most "
    f"{MAX_NESTING})"
)


# JSON values a body may hold (as counted below: commas and opening brackets outside
# strings): what the largest legitimate batch needs, with room to spare. A sale as terminals
# send it counts 14 with one line and 5 more a line, a redemption 5, an enrollment about 20:
# at most 16 + 6 a line + 5 is allowed for, so 500 operations (MAX_BATCH) of sales of 8
# lines are 500 x (16 + 8 x 6 + 5) = 34,500, and one sale of 500 lines (MAX_LINES_PER_SALE)
# 3,000 more. Twice that (75,000) still refuses a body of empty objects or lists at a
# twentieth of the 2 MiB size limit, and 16 such bodies at once stay near 100 MB.
VALUES_PER_OPERATION = 16 + 8 * 6 + 5
DEFAULT_MAX_VALUES = 2 * (500 * VALUES_PER_OPERATION + 500 * 6)

# Bodies larger than this are parsed in a worker thread, at most LARGE_PARSES at a time, so
# the event loop (health, small requests) is never held up, and N parallel large bodies
# are not all turned into Python objects at once.
LARGE_BODY = 64 * 1024
LARGE_PARSES = 2


def outside_strings(text: str) -> str:
    """The JSON text with its strings' contents taken out, in linear time with C-speed
    string methods: escaped backslashes, then escaped quotes are dropped, so every quote
    left opens or closes a string (pairing from the left, as JSON reads escapes), and the
    text between pairs of quotes is inside a string. A regular expression matching whole
    strings took quadratic time on one that never closes (an unauthenticated body of
    120 KB of escaped quotes held a worker for 14 s; 2 MiB, hours)."""
    bare = text.replace("\\\\", "").replace('\\"', "")
    return "".join(bare.split('"')[::2])


def max_values(max_batch: int, max_lines_per_sale: int) -> int:
    """The bound on a body's JSON values for a server with these batch limits."""
    return 2 * (max_batch * VALUES_PER_OPERATION + max_lines_per_sale * 6)


def too_many_values(text: str, limit: int) -> str | None:
    """Why the body holds too many JSON values to be parsed (None: it does not), counted
    before parsing: outside strings every value but the first of its container follows a
    comma, and every container opens with a bracket (an upper bound on the values)."""
    if text.count(",") + text.count("[") + text.count("{") <= limit:
        return None  # cheap first: commas in strings only make this larger
    bare = outside_strings(text)
    if bare.count(",") + bare.count("[") + bare.count("{") <= limit:
        return None
    return f"the body holds more than {limit} JSON values; send fewer or smaller operations"


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether objects and lists in a parsed JSON value nest more than `limit` levels
    (walked a level at a time, without recursion: a batch's values are looked at once
    each, with no tuple per value)."""
    level: list[Any] = [value]
    depth = 1
    while True:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return False
        if depth > limit:
            return True
        level = []
        for container in containers:
            level.extend(container.values() if isinstance(container, dict) else container)
        depth += 1


def load_body(body: bytes, limit: int = DEFAULT_MAX_VALUES) -> Any:
    """The JSON value of a request body, or a 400 (413: too many values) naming why it
    cannot be read safely."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8 text") from None
    too_many = too_many_values(text, limit)
    if too_many:
        raise HTTPException(413, too_many)
    try:
        value = json.loads(text, parse_int=bounded_int)
    except RecursionError:
        raise HTTPException(400, TOO_DEEP) from None
    # Cheap first: a body of fewer brackets than the limit cannot nest past it.
    if text.count("[") + text.count("{") > MAX_BODY_DEPTH and nested_deeper(value, MAX_BODY_DEPTH):
        raise HTTPException(400, TOO_DEEP)
    return value


class HostileJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            state = self.app.state
            limit = getattr(state, "max_body_values", DEFAULT_MAX_VALUES)
            if len(body) <= LARGE_BODY:
                self._json = load_body(body, limit)
            else:
                if getattr(state, "large_parses", None) is None:
                    state.large_parses = anyio.Semaphore(LARGE_PARSES)
                async with state.large_parses:
                    self._json = await anyio.to_thread.run_sync(load_body, body, limit)
        return self._json


class HostileJSONRoute(APIRoute):
    """A route whose JSON body is read by `load_body`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_hostile_json(request: Request) -> Response:
            return await handler(HostileJSONRequest(request.scope, request.receive))

        return parse_hostile_json
