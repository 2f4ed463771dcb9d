"""Where the time and memory went (Linux /proc): peak RSS, CPU seconds per process, how busy the machine
was, percentiles. The benches run on shared machines, so they report what else was running too."""
import math
import os
import resource
import time


def peak_mb():
    """Peak resident set size of this process (VmHWM), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CpuMeter:
    """CPU seconds spent during a phase by this process, by its PostgreSQL backend (when the server
    is local) and by everything else on the machine: on a shared machine, the last says how much the
    wall-clock figure was disturbed."""

    def __init__(self, backend_pid=None):
        self.pid = backend_pid
        self.t0, self.own0, self.pg0, self.busy0 = time.perf_counter(), self._own(), self._pg(), self._busy()

    @staticmethod
    def _own():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _pg(self):
        try:
            fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, TypeError, IndexError, ValueError):
            return None

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as fh:
                v = [int(x) for x in fh.readline().split()[1:]]
            return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return None

    def stop(self):
        own = self._own() - self.own0
        pg1, busy1 = self._pg(), self._busy()
        pg = pg1 - self.pg0 if pg1 is not None and self.pg0 is not None else None
        other = max(0.0, busy1 - self.busy0 - own - (pg or 0)) if busy1 is not None and self.busy0 is not None else None
        return {"cpu_python_s": own, "cpu_postgres_s": pg, "cpu_other_s": other}


def _stat(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # after the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), counted from field 3
    return int(fields[1]), [int(x) for x in fields[11:15]]


def cpu_seconds(root_pid=None, command=None):
    """CPU seconds of a process tree (a root pid) or of every process running `command`, including
    children already exited and reaped (their time is in the parent's cutime/cstime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid, (utime, stime, cutime, cstime) = _stat(entry)
            if command is not None:
                with open(f"/proc/{entry}/comm") as fh:
                    match = fh.read().strip() == command
            else:
                match = int(entry) == root_pid or ppid == root_pid
        except OSError:
            continue
        if match:
            total += utime + stime + cutime + cstime
    return total / ticks


def machine_busy(seconds=3.0):
    """Share of both cores busy over a few seconds (/proc/stat): other work on the box skews latency."""
    def sample():
        with open("/proc/stat") as fh:
            values = [int(x) for x in fh.readline().split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)  # busy (all but idle and iowait), total
    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def pct(values, q):
    values = sorted(values)
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]
