"""``sj-common show`` as users run it: the installed console script, as a subprocess."""

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SJ_COMMON = ROOT / ".venv" / "bin" / "sj-common"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "events" / "sample_nmnist.bin"

pytestmark = pytest.mark.skipif(
    not SJ_COMMON.is_file(), reason="no .venv/bin/sj-common (run scripts/setup.sh)"
)


def _run(*args, cwd):
    return subprocess.run(
        [str(SJ_COMMON), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow  # renders a figure in a subprocess
@pytest.mark.skipif(not FIXTURE.is_file(), reason="../shared/fixtures is absent")
def test_show_renders_the_real_nmnist_fixture(tmp_path):
    pytest.importorskip("tonic")
    out = tmp_path / "frames.png"
    res = _run("show", FIXTURE, "--T", "8", "--out", out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    # the fixture's numbers (PROVENANCE.md): 4,325 events, 2,145 ON / 2,180 OFF, 34x34, up to 311,175 us
    assert "nmnist, 4325 events (2145 ON / 2180 OFF)" in res.stdout and "sensor 34x34" in res.stdout
    w, h = _png_size(out)
    assert w > 600 and h > 100 and out.stat().st_size > 5000


@pytest.mark.slow  # renders a figure in a subprocess
def test_show_gesture_npy_default_out(tmp_path):
    rng = np.random.default_rng(0)
    n = 2000
    arr = np.stack(
        [
            rng.integers(0, 128, n),
            rng.integers(0, 128, n),
            rng.integers(0, 2, n),
            np.sort(rng.uniform(0, 900, n)),
        ],
        1,
    )
    np.save(tmp_path / "user01_fluorescent.npy", arr)
    res = _run("show", "user01_fluorescent.npy", "--T", "4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "gesture, 2000 events" in res.stdout and "sensor 128x128" in res.stdout
    assert _png_size(tmp_path / "user01_fluorescent_frames.png")[0] > 300


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"hello", "unsupported file type '.txt'"),
        # the readers' checks import numpy and tonic in the subprocess: seconds each
        pytest.param("broken.bin", b"\x01" * 7, "size 7 B is not a multiple of 5", marks=pytest.mark.slow),
        pytest.param(
            "broken.aedat",
            b"#!AER-DAT2.0\r\n" + b"\x00" * 12,
            "not a whole number of 8-byte",
            marks=pytest.mark.slow,
        ),
        pytest.param("broken.npy", None, "expected an [N, 4] array", marks=pytest.mark.slow),
        ("missing.bin", ..., "no such file"),
    ],
)
def test_show_unsupported_or_corrupt_file_is_one_clear_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros((5, 3)))
    elif content is not ...:
        path.write_bytes(content)
    res = _run("show", path, "--out", tmp_path / "x.png", cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sj-common show: error: "), res.stderr
    assert message in lines[0] and name in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_show_rejects_bad_T(tmp_path):
    res = _run("show", "x.bin", "--T", "0", cwd=tmp_path)
    assert res.returncode == 2 and "--T: expected a positive number of time bins, got 0" in res.stderr


def _bin(path: Path, x, y, p, t_us) -> None:
    """N-MNIST / N-Caltech101 .bin: 5 bytes per event (x, y, polarity bit 7 + 23-bit timestamp)."""
    x, y, p, t = (np.asarray(a, np.int64) for a in (x, y, p, t_us))
    raw = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], 1).astype(np.uint8)
    path.write_bytes(raw.tobytes())


@pytest.mark.slow  # renders a figure in a subprocess
def test_show_bin_beyond_34x34_is_read_as_ncaltech101(tmp_path):
    pytest.importorskip("tonic")
    n = 500
    rng = np.random.default_rng(0)
    # x in [10, 209], y in [5, 154]: shifted to start at 0, as the N-Caltech101 data set does
    x, y = np.r_[10, 209, rng.integers(10, 210, n - 2)], np.r_[5, 154, rng.integers(5, 155, n - 2)]
    _bin(tmp_path / "image_0001.bin", x, y, rng.integers(0, 2, n), np.sort(rng.integers(0, 300_000, n)))
    res = _run("show", "image_0001.bin", "--out", "f.png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "ncaltech101, 500 events" in res.stdout and "sensor 200x150" in res.stdout
    res = _run("show", "image_0001.bin", "--format", "nmnist", "--out", "g.png", cwd=tmp_path)
    assert res.returncode == 2 and "is outside the sensor range [0, 34)" in res.stderr
