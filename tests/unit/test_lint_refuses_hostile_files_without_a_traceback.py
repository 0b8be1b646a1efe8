"""`canary lint` answers every file with findings or one clear line, never a traceback, and in
bounded time and memory: non-UTF-8 bytes, unknown YAML tags, bad scalars, deep nesting,
self-references, alias bombs, oversized files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from canary import cli
from canary.core import lint

ROLLOUT = """\
apiVersion: canary.dev/v1alpha1
kind: Rollout
metadata: {name: r, namespace: test}
spec:
  targetRef: {name: podinfo}
  release: {images: {podinfo: "podinfo:6.1.0"}}
"""


def _bomb(levels: int, fan: int = 10) -> str:
    lines = ["a0: &a0 [x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"kind: Rollout\nname: \xff\xfe\n", "not UTF-8 text (byte 0xff at offset 20)"),
        (b"x: !!python/object/apply:os.system [id]\n", "not valid YAML"),
        (b"x: !!int forty-two\n", "not valid YAML"),
        (b"at: 2026-99-99\n", "not valid YAML"),
        (b"x: [1, 2\n", "not valid YAML"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 64 levels"),
        (b"- " * 5000 + b"x\n", "nested deeper than 64 levels"),
        (b"a: &x {b: *x}\n", "refers to the node that contains it"),
        (ROLLOUT.replace("{name: podinfo}", "&t {name: podinfo, x: *t}").encode(), "refers to"),
        (_bomb(9).encode(), "more than 100000 values once its aliases are expanded"),
        (b"#" * (lint.MAX_BYTES + 1), "larger than 1024 KiB"),
    ],
    ids=[
        "non-utf8",
        "python-tag",
        "bad-int",
        "bad-timestamp",
        "unclosed",
        "deep-flow",
        "deep-block",
        "self-reference",
        "self-reference-in-rollout",
        "alias-bomb",
        "oversized",
    ],
)
def test_hostile_file_gets_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, message: str
) -> None:
    """The file is refused with a one-line reason on stderr and exit status 1, in bounded work.

    The bound is on this process's CPU time, not wall time: an alias bomb expanded would take
    minutes of CPU, while a loaded machine only stretches the wall clock."""
    path = tmp_path / "hostile.yaml"
    path.write_bytes(data)
    started = time.process_time()
    assert cli.main(["lint", str(path)]) == 1
    assert time.process_time() - started < 5
    err = capsys.readouterr().err
    assert f"{path}: " in err
    assert message in err
    assert "Traceback" not in err


def test_a_small_alias_expansion_is_still_read() -> None:
    """Anchors and aliases within the bounds are ordinary YAML and load as usual."""
    assert len(lint.read(_bomb(3).encode())[0]["a3"]) == 10
    documents = lint.read(b"base: &b {name: x}\nuse: *b\n")
    assert documents == [{"base": {"name": "x"}, "use": {"name": "x"}}]


def test_alias_bomb_inside_a_rollout_does_not_hang_lint(tmp_path: Path) -> None:
    """A Rollout whose steps expand to 10^9 items is refused within seconds (own process, so a
    regression fails on the timeout instead of hanging the suite)."""
    bomb = _bomb(9).replace("\n", "\n  ").rstrip()
    text = ROLLOUT + "  x:\n  " + bomb + "\n  steps: *a9\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "canary", "lint", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "more than 100000 values" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            "  service: {name: " + "s" * 57 + ", port: 80}\n",
            "spec.service.name: " + "s" * 57 + "-stable and",
        ),
        ("  service: {name: podinfo, port: 80}\n  analysis: {interval: 100ms}\n", "at least 1s"),
    ],
)
def test_lint_checks_the_names_and_bounds_the_controller_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: str, expected: str
) -> None:
    """Derived names that would not fit and intervals below 1s are findings with field paths."""
    path = tmp_path / "r.yaml"
    path.write_text(ROLLOUT + tail)
    assert cli.main(["lint", str(path)]) == 1
    assert expected in capsys.readouterr().out


def test_a_control_character_is_refused_before_parsing() -> None:
    """A control character is refused as not YAML by the reader, before any document is read."""
    with pytest.raises(lint.Unreadable, match="unacceptable character #x0001"):
        lint.read(b"kind: Rollout\nname: \x01\n")


def test_every_document_of_a_stream_is_read_and_empty_ones_are_dropped() -> None:
    """Each non-empty document of a multi-document stream is read, in order."""
    assert lint.read(b"---\na: 1\n---\n---\nb: 2\n...\n") == [{"a": 1}, {"b": 2}]
    assert lint.read(b"") == []
