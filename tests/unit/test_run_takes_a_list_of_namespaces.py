"""`canary run --watch-namespace`: repeatable and comma-separated (a namespaced install passes
its watchNamespaces this way); empty names are refused."""

from __future__ import annotations

import pytest

from canary.cli import build_parser


def test_namespaces_accumulate_from_lists_and_repeats() -> None:
    """a,b then c: three namespaces, in order; none given means every namespace."""
    args = build_parser().parse_args(["run", "--watch-namespace", "a,b", "--watch-namespace=c"])
    assert args.watch_namespace == ["a", "b", "c"]
    assert build_parser().parse_args(["run"]).watch_namespace == []


def test_an_empty_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """'a,,b' exits 2 naming the bad list."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "--watch-namespace", "a,,b"])
    assert exited.value.code == 2
    assert "not a comma-separated list of namespaces: 'a,,b'" in capsys.readouterr().err
