"""The command a bench.scale report quotes reruns the same setup: every flag given a value
other than its default is in it (run F's and G's reports left out ``--tick 2s``)."""

import shlex

import pytest

from bench.scale import _command, _parser

# The flags the command leaves out on purpose: where the run writes and which dev environment
# it uses, and --soak, which the soak's report quotes itself.
NOT_QUOTED = {"dev_dir", "output", "soak"}


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--n", "1000", "--workers", "16", "--kube-qps", "100", "--kube-burst", "200",
         "--warm", "600", "--timeout", "1200", "--nice-stand-ins", "--rps", "100",
         "--tick", "2s"],
        ["--n", "10", "--n", "100", "--interval", "30s", "--prometheus-timeout", "5s",
         "--router", "TrafficSplit"],
        ["--n", "50", "--custom-query", 'sum(rate(x{namespace="{{namespace}}"}[1m])) > 0',
         "--slow-query", "vector(1) and on() (count(up) > 0)"],
    ],
)  # fmt: skip
def test_the_quoted_command_parses_back_to_the_same_setup(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    sizes = args.n or [10, 100]
    words = shlex.split(_command(args, sizes))
    assert words[:3] == ["python", "-m", "bench.scale"]
    again = _parser().parse_args(words[3:])
    mine = {k: v for k, v in vars(args).items() if k not in NOT_QUOTED | {"n"}}
    theirs = {k: v for k, v in vars(again).items() if k not in NOT_QUOTED | {"n"}}
    assert theirs == mine
    assert again.n == sizes


def test_defaults_are_left_out() -> None:
    args = _parser().parse_args(["--n", "10"])
    assert _command(args, [10]) == "python -m bench.scale --n 10"


def test_a_tick_and_an_interval_other_than_the_defaults_are_quoted() -> None:
    args = _parser().parse_args(["--tick", "2s", "--interval", "30s"])
    assert _command(args, [1000]) == "python -m bench.scale --n 1000 --interval 30s --tick 2s"
