"""How busy the machine was while a benchmark ran: CPU seconds this process (and its children) used, and the CPU
seconds every other process took meanwhile.

Latency on a small shared machine is only meaningful next to this: a run during which other processes took a core
measures contention, not hopmem. The system side reads ``/proc/stat`` (Linux); elsewhere it is reported as None.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any


def _system_busy_s() -> float | None:
    """CPU seconds all processes have spent busy since boot (user, nice, system, irq, softirq, steal), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(v) for v in fields[1:])
    steal = rest[0] if rest else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class CpuMeter:
    """Started with :meth:`start`; :meth:`read` gives wall, own and other CPU seconds since then."""

    wall: float = 0.0
    own: float = 0.0
    system: float | None = None

    @classmethod
    def start(cls) -> CpuMeter:
        return cls(wall=time.perf_counter(), own=_own_cpu_s(), system=_system_busy_s())

    def read(self) -> dict[str, Any]:
        """``wall_s``, ``own_cpu_s`` (this process and the children it has waited for), ``other_cpu_s`` (every
        other process; None where unknown) and ``cpus``; ``other_cpu_s`` near 0 means the run had the machine."""
        wall = time.perf_counter() - self.wall
        own = _own_cpu_s() - self.own
        now = _system_busy_s()
        other = None if now is None or self.system is None else max(0.0, now - self.system - own)
        return {
            "wall_s": round(wall, 3),
            "own_cpu_s": round(own, 3),
            "other_cpu_s": None if other is None else round(other, 3),
            "cpus": os.cpu_count(),
        }
