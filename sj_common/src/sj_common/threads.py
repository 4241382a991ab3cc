"""CPU thread policy for the applications (CLIs, demo, examples, benchmarks) - never called by library code.

Why tiny SNN steps collapse on a busy CPU: a spiking step is hundreds of small ops (one neuron pass per layer
and time step) on tensors of a few kB. With PyTorch's default, every op that is parallelised opens an OpenMP
region on ``torch.get_num_threads()`` threads (all cores), and between regions GNU OpenMP's worker threads
*spin-wait* (``OMP_WAIT_POLICY`` unset means up to ~300k spins before sleeping). On an idle machine that costs
little; when other processes hold the cores, a region cannot finish until every one of its threads has been
scheduled, and the spinning threads burn the time slices the others need, so each small op waits for whole
scheduler quanta. ``benchmarks/contention.py`` measures the effect and this policy's fix.

:func:`apply_thread_policy` is the fix, applied by the application that owns the process, first, before any
heavy work:

* ``OMP_WAIT_POLICY=PASSIVE`` (via ``os.environ.setdefault``, so a user's own setting wins) - idle OpenMP
  threads sleep instead of spinning. GNU OpenMP reads the variable once, when the library is loaded (that is,
  at ``import torch``), so it only takes effect if no OpenMP runtime is loaded yet; the return value and
  :func:`openmp_loaded` tell which case applies.
* ``torch.set_num_threads(n)`` with the default ``n`` chosen by :func:`default_threads`. One thread forms
  no OpenMP team, so nothing spins whatever the wait policy; with more threads and OpenMP already loaded
  (and ``OMP_WAIT_POLICY`` unset) it warns, since the spinning default then stays.

Measured with ``benchmarks/contention.py`` on a 2-core machine already loaded by other users (load average
6-8, medians of 2 rounds), one training step of the demo: 3.9 s with torch's defaults (2 spinning threads),
0.62 s with ``OMP_WAIT_POLICY=PASSIVE`` (2 threads) and 0.48 s with this policy (1 thread); beside two busy
processes in their own sessions 3.5 s, 0.88 s and 0.65 s (this policy: 1.36x its time alone, against a
fair 1.5x). The spin-waiting default is the collapse; a second thread buys nothing on this small net.

Library modules never call this: a process-wide setting belongs to the program, not to a layer it imports.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["apply_thread_policy", "default_threads", "openmp_loaded", "usable_cpus"]

# Names of the OpenMP runtimes PyTorch wheels ship or link (GNU, Intel, LLVM).
_OPENMP_LIBS = ("libgomp", "libiomp", "libomp")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS tells it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def openmp_loaded() -> bool:
    """Whether an OpenMP runtime is already loaded in this process (then ``OMP_*`` variables are already read).

    On Linux this reads ``/proc/self/maps``; elsewhere it assumes the runtime is loaded once ``torch`` is imported.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            maps = f.read()
    except OSError:
        return "torch" in sys.modules
    return any(lib in maps for lib in _OPENMP_LIBS)


def default_threads() -> int:
    """The thread count used when none is given: ``OMP_NUM_THREADS`` if the user set it, else 1.

    One thread is the default on purpose. The models the sj-plugins CLIs and demo train on a CPU are small
    (a spiking VGG on 34 x 34 frames, batch 32), where an OpenMP team buys little on an idle machine and costs
    many times over on a busy one (the slowdown then tracks the fair CPU share; see ``benchmarks/contention.py``).
    It also makes CPU results independent of the machine's core count: summation order, hence the last bits of
    every float, depends on the thread count, and so do the README's figures. Pass ``--threads N`` (or
    ``threads=N``) for larger models on an idle many-core machine.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env.split(",")[0])
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return 1


def apply_thread_policy(threads: int | None = None) -> int:
    """Set this process's CPU thread policy; call it first in an application, before heavy work.

    Args:
        threads: torch intra-op threads; ``None`` picks :func:`default_threads` (``OMP_NUM_THREADS`` or 1).
            ``0`` means every usable CPU.

    Returns:
        The number of threads torch now uses.

    Raises:
        ValueError: ``threads`` is not ``None`` or an integer >= 0 (the message names the value received).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise ValueError(f"threads: expected None or an integer >= 0 (0 = every usable CPU), got {threads!r}")
    n = default_threads() if threads is None else (threads or usable_cpus())
    if not openmp_loaded():
        # Read by GNU OpenMP when it loads (at `import torch` below); a value the user set is kept.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    elif n > 1 and "OMP_WAIT_POLICY" not in os.environ:
        warnings.warn(
            f"threads={n}: OpenMP was loaded (torch imported) before apply_thread_policy, so its wait policy "
            "stays the spinning default and the threads may crawl on a busy CPU; call it before importing "
            "torch, or export OMP_WAIT_POLICY=PASSIVE",
            RuntimeWarning,
            stacklevel=2,
        )
    import torch

    torch.set_num_threads(n)
    return torch.get_num_threads()
