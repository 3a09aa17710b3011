"""The benchmark's cost arithmetic: the ECPU estimate, idle subtraction and spreads.

Pure functions, no server: the cost phase's numbers are only as good as these.
"""

from __future__ import annotations

import pytest

from benchmarks.cost import ECPU_CPU_US, ECPU_KB, ecpu
from benchmarks.cost_report import floor_sentence, spread
from benchmarks.measure import ServerCounters


def test_ecpu_of_a_small_command_is_one_unit() -> None:
    assert ecpu(commands=1, bytes_moved=300, cpu_us=ECPU_CPU_US / 2) == 1.0


def test_ecpu_counts_one_unit_per_kilobyte_moved() -> None:
    assert ecpu(commands=1, bytes_moved=3.2 * ECPU_KB, cpu_us=ECPU_CPU_US) == pytest.approx(3.2)


def test_ecpu_bills_cpu_time_when_it_is_the_higher_dimension() -> None:
    assert ecpu(commands=1, bytes_moved=2 * ECPU_KB, cpu_us=5 * ECPU_CPU_US) == pytest.approx(5.0)


def test_ecpu_never_bills_less_than_one_unit_per_command() -> None:
    assert ecpu(commands=7, bytes_moved=100, cpu_us=ECPU_CPU_US) == 7.0


def test_ecpu_without_cpu_figure_uses_commands_and_bytes() -> None:
    assert ecpu(commands=2, bytes_moved=4 * ECPU_KB, cpu_us=None) == pytest.approx(4.0)


def test_server_counters_subtract_field_by_field() -> None:
    busy = ServerCounters(
        cpu_us=900.0, main_cpu_us=850.0, command_us=400.0, net_in=5000, net_out=70
    )
    idle = ServerCounters(cpu_us=100.0, main_cpu_us=90.0, command_us=3.0, net_in=40, net_out=3000)
    assert busy - idle == ServerCounters(
        cpu_us=800.0, main_cpu_us=760.0, command_us=397.0, net_in=4960, net_out=-2930
    )


def test_server_counters_without_main_thread_figure_subtract_to_none() -> None:
    a = ServerCounters(cpu_us=2.0, main_cpu_us=None, command_us=0.0, net_in=0, net_out=0)
    b = ServerCounters(cpu_us=1.0, main_cpu_us=1.0, command_us=0.0, net_in=0, net_out=0)
    assert (a - b).main_cpu_us is None


def test_spread_is_median_min_and_max() -> None:
    assert spread([30.0, 10.0, 20.0]) == (20.0, 10.0, 30.0)
    assert spread([]) is None


def test_the_floor_of_a_put_is_reported_with_its_spread_when_measured() -> None:
    cells = [{"cpu_us": c, "bytes_in": 4000.0} for c in (60.0, 70.0, 65.0)]
    text = floor_sentence({"cost": {"ops": {"put_floor": {"evalsha": cells}}}})
    assert "65.0 µs (60.0–70.0 µs)" in text


def test_no_floor_sentence_when_the_floor_was_not_measured() -> None:
    assert floor_sentence({"cost": {"ops": {}}}) == ""
