"""The scale benchmark's CPU by process (bench/scale.py): a process group's CPU is read from
``/proc``, and the table names the busiest first, the rest, and the machine's total."""

from __future__ import annotations

import subprocess
import sys
import time

from bench import scale


def test_a_busy_process_groups_cpu_seconds_grow_and_an_idle_ones_do_not() -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"],
        start_new_session=True,
    )
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(5)"], start_new_session=True
    )
    try:
        time.sleep(0.5)
        before = scale.groups_cpu_seconds([busy.pid, idle.pid])
        machine_before = scale.machine_busy_seconds()
        time.sleep(1.5)
        after = scale.groups_cpu_seconds([busy.pid, idle.pid])
        busy_grew = after[busy.pid] - before[busy.pid]
        idle_grew = after[idle.pid] - before[idle.pid]
        machine_grew = scale.machine_busy_seconds() - machine_before
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait()
    # A spinning process gets well over a tenth of a core even on a loaded 2-core machine; a
    # sleeping one gets no tick; the machine's busy time includes the spinner's.
    assert busy_grew > 0.15
    assert idle_grew <= 0.02
    assert machine_grew >= busy_grew - 0.05


def test_a_process_group_that_does_not_exist_used_nothing() -> None:
    assert scale.groups_cpu_seconds([2**22 + 12345]) == {2**22 + 12345: 0.0}


def test_the_table_lists_the_busiest_first_then_the_rest_and_the_machine() -> None:
    report = scale.Report(1000)
    report.seconds = 120.0
    report.component_cpu = {"controller": 10.0, "prometheus": 40.0, "machine": 200.0}
    line = scale.cpu_table([report])
    assert line.startswith("- N = 1000: prometheus 20.0, controller 5.0, everything else 75.0;")
    assert "the machine 100.0 of " in line


def test_without_a_dev_environment_only_the_harness_own_processes_are_named() -> None:
    assert scale.component_pids({}) == {}
    assert scale.cpu_table([scale.Report(10)]) == ""
