"""Shared building blocks of the wire models: camelCase aliases, durations, names.

Used by every model module. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

# At most four parts of at most six digits each (and nine decimals): the longest such duration
# (about 116 years) fits Go's time.Duration, so the API server's CEL ``duration()`` and Python's
# ``timedelta`` can always parse what the pattern lets through.
DURATION_PATTERN = r"^([0-9]{1,6}(\.[0-9]{1,9})?(ms|s|m|h)){1,4}$"
DURATION_MAX_LENGTH = 64
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def parse_duration(value: object) -> timedelta:
    """Parse a Go-style duration ("15s", "1m30s", "250ms"); reject negative or malformed ones."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
        shown = f"{value[:40]!r}…" if isinstance(value, str) and len(value) > 40 else repr(value)
        raise ValueError(
            f"{shown} is not a duration; write it like 30s, 5m or 1h30m "
            "(at most four parts of at most six digits)"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a duration the way Kubernetes users write it: 1h30m, 2m, 15s, 250ms."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    if millis % 1000:
        return f"{millis}ms"
    seconds = millis // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts)


def _bounded(minimum: timedelta, maximum: timedelta) -> Callable[[object], timedelta]:
    def check(value: object) -> timedelta:
        parsed = parse_duration(value)
        if parsed < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}")
        if parsed > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)}")
        return parsed

    return check


def _duration_schema(minimum: timedelta, maximum: timedelta) -> dict[str, Any]:
    # The same bounds for the API server, as CEL on the string (the pattern guarantees that
    # duration() can parse it, so the rule never fails to evaluate).
    rules = [
        {
            "rule": f"duration(self) <= duration('{format_duration(maximum)}')",
            "message": f"must be at most {format_duration(maximum)}",
        }
    ]
    if minimum:
        rules.insert(
            0,
            {
                "rule": f"duration(self) >= duration('{format_duration(minimum)}')",
                "message": f"must be at least {format_duration(minimum)}",
            },
        )
    return {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "maxLength": DURATION_MAX_LENGTH,
        "x-kubernetes-validations": rules,
    }


MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(hours=1)
MAX_DURATION = timedelta(days=30)

Duration = Annotated[
    timedelta,
    BeforeValidator(_bounded(timedelta(0), MAX_DURATION)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_duration_schema(timedelta(0), MAX_DURATION)),
]
"""A duration from 0 to 30 days (720h); on the wire a string such as ``30s``."""

Interval = Annotated[
    timedelta,
    BeforeValidator(_bounded(MIN_INTERVAL, MAX_INTERVAL)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_duration_schema(MIN_INTERVAL, MAX_INTERVAL)),
]
"""An evaluation tick: from 1s (no hot loops) to 1h."""

MAX_CALL_TIMEOUT = timedelta(seconds=60)

CallTimeout = Annotated[
    timedelta,
    BeforeValidator(_bounded(MIN_INTERVAL, MAX_CALL_TIMEOUT)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_duration_schema(MIN_INTERVAL, MAX_CALL_TIMEOUT)),
]
"""How long one outbound call (a hook) may take: from 1s to 60s."""

DERIVED_SUFFIX_ROOM = len("-canary")
"""canary names what it creates ``<service>-stable``, ``<service>-canary`` and
``<target>-canary``: the names it derives from must leave room for the suffix."""

Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
ServiceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]


class Wire(BaseModel):
    """Base of every model that crosses the wire: camelCase aliases, immutable, strict fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        use_enum_values=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
