"""Fuzz `canary lint`: any bytes, YAML-ish token soup and near-valid Rollouts are read or
refused with Unreadable, and checked into findings, never an exception."""

from __future__ import annotations

import json

import yaml
from hypothesis import given
from hypothesis import strategies as st

from canary.core import lint
from tests.fuzz.budget import FUZZ
from tests.fuzz.strategies import JSON, ROLLOUT

TOKENS = [
    "a:",
    " &x",
    " *x",
    "[",
    "]",
    "{",
    "}",
    "!!python/object:os.system",
    "- ",
    "\n",
    "  ",
    "'",
    '"',
    "!!binary",
    "---",
    "...",
    ":",
    ",",
    "? ",
    "|",
    ">",
    "%YAML 1.1\n",
    "\t",
    "\\",
    "2026-99-99",
    "0x1F",
    ".inf",
    "!!int",
    "!!float",
    "!!timestamp",
    "&a",
    "*a",
    "<<: *x",
    "\xff",
    "\x00",
    "kind: Rollout\n",
    "apiVersion: canary.dev/v1alpha1\n",
    "spec:",
    "9" * 30,
]


def _read_and_check(data: bytes) -> None:
    try:
        documents = lint.read(data)
    except lint.Unreadable as refused:
        reason = str(refused)
    else:
        reason = ""
    if reason:
        assert "\n" not in reason
        return
    for finding in lint.check(documents):
        assert isinstance(str(finding.problem), str)


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    """Random bytes are read or refused in one line."""
    _read_and_check(data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map("".join))
def test_yaml_token_soup(text: str) -> None:
    """Streams of YAML syntax (anchors, tags, flows, merges) are read or refused."""
    _read_and_check(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.lists(st.one_of(ROLLOUT, JSON), min_size=1, max_size=3), st.booleans())
def test_near_valid_rollouts(documents: list[object], as_json: bool) -> None:
    """Rollouts with every field at, beyond or beside its bound get findings, never a crash."""
    if as_json:
        data = "\n---\n".join(json.dumps(d) for d in documents).encode()
    else:
        data = yaml.safe_dump_all(documents, allow_unicode=True).encode()
    _read_and_check(data)
    for finding in lint.check(documents):
        assert isinstance(finding.problem.path, str)
