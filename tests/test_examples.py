"""The drop-in examples (examples/dropin_*.py): each runs as a user would run it, and its core is the README's
snippet for that plugin, verbatim.

Accuracy thresholds (test setting, one thread, seed 0, all 1,000 test digits; chance is 10 %). Measured
before setting them (the MNIST-5k splits in their seeded random order): transfer --steps 40: 76.6 %; bkd
--steps 40 --teacher-steps 40: student 56.3 %, teacher 72.4 %; calib --steps 60: ANN 90.9 %, SNN 92.2 / 88.5 /
89.6 %, calibrated 92.2 / 89.7 / 90.9 % at T = 1 / 2 / 4. The thresholds leave a wide margin for other
thread counts and library versions, and stay far above chance. CPU time of each at this setting: 8 s
(calib), 21 s (transfer), 22 s (bkd) on one thread.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("dropin_calib.py", "dropin_transfer.py", "dropin_bkd.py")
START, END = "# --- snippet start ---\n", "# --- snippet end ---\n"


def core(name: str) -> str:
    """The text between an example's snippet markers (exactly one pair)."""
    text = (ROOT / "examples" / name).read_text()
    assert text.count(START) == 1 and text.count(END) == 1, name
    return text.split(START)[1].split(END)[0]


def _pages() -> list[Path]:
    """The README and the hand-written docs pages, where each plugin's snippet is shown."""
    docs = (ROOT / "docs").rglob("*.md")
    return [ROOT / "README.md", *(p for p in sorted(docs) if not {"_build", "notebooks"} & set(p.parts))]


def readme_blocks() -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in _pages())
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("name", EXAMPLES)
def test_readme_snippet_is_the_example_core(name):
    assert core(name) in readme_blocks(), (
        f"no ```python block of README.md or docs/ equals the core of {name}"
    )


def _run(name: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    p = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def _percent(pattern: str, text: str) -> list[float]:
    found = [float(v) for v in re.findall(pattern, text)]
    assert found, f"{pattern!r} not in the output:\n{text}"
    return found


@pytest.mark.slow
def test_dropin_transfer_trains():
    out = _run("dropin_transfer.py", "--steps", "40")
    assert _percent(r"event test accuracy: ([\d.]+) %", out)[0] >= 50.0  # measured 76.6


@pytest.mark.slow
def test_dropin_bkd_trains():
    out = _run("dropin_bkd.py", "--steps", "40", "--teacher-steps", "40")
    assert _percent(r"teacher test accuracy: ([\d.]+) %", out)[0] >= 30.0  # measured 72.4
    assert _percent(r"student test accuracy: ([\d.]+) %", out)[0] >= 35.0  # measured 56.3


@pytest.mark.slow
def test_dropin_calib_trains():
    out = _run("dropin_calib.py", "--steps", "60")
    assert _percent(r"QCFS ANN: ([\d.]+) %", out)[0] >= 80.0  # measured 90.9
    snn = _percent(r"T=\d: SNN ([\d.]+) %", out)
    cal = _percent(r"calibrated SNN ([\d.]+) %", out)
    assert len(snn) == len(cal) == 3
    assert min(snn) >= 70.0 and min(cal) >= 75.0  # measured >= 88.5 and >= 89.7
