"""Request bodies parsed as hostile JSON: UTF-8 only, nesting bounded, and integers too
long to convert kept as a marker that refuses the operation holding one, not the batch."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

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


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether objects and lists in a parsed JSON value nest more than `limit` levels
    (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return False


def load_body(body: bytes) -> Any:
    """The JSON value of a request body, or a 400 naming why it cannot be read safely."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8 text") from None
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
            self._json = load_body(await self.body())
        return self._json


class HostileJSONRoute(APIRoute):
    """A route whose JSON body is read by `load_body`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_hostile_json(request: Request) -> Response:
            return await handler(HostileJSONRequest(request.scope, request.receive))

        return parse_hostile_json
