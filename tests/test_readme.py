"""Every ```python block of the README and of the documentation pages (docs/**/*.md) runs as written, in a
smoke mode.

Smoke mode: a few documented sizes are cut (``SMOKE_EDITS``: each edit must still match the README, so a
changed block fails here instead of silently running something else). The plugins' snippets are the cores of
``examples/dropin_*.py``, verbatim: ``tests/test_examples.py`` checks that and runs the examples, so they are
not run a second time here. Blocks run in a temporary folder with
``HOME`` pointing there, so ``~/data`` does not exist: the block that reads local data sets must raise the
documented ``FileNotFoundError``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_examples import EXAMPLES, core

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def pages() -> list[Path]:
    """The README and every hand-written page of the docs (not the build output, not the notebook copies)."""
    docs = [
        p
        for p in sorted((ROOT / "docs").rglob("*.md"))
        if not {"_build", "notebooks"} & set(p.relative_to(ROOT / "docs").parts)
    ]
    return [README, *docs]


def blocks() -> list[str]:
    return [
        b
        for page in pages()
        for b in re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    ]


# (text of the README, smoke replacement): cut sizes only, never the API a block shows
SMOKE_EDITS = [
    (
        'config=TrainConfig(out="runs/vgg", epochs=1, batch_size=32, lr=5e-3)',
        'config=TrainConfig(out="runs/vgg", epochs=1, batch_size=32, lr=5e-3, max_steps_per_epoch=2, progress=False)',
    ),
]
NEEDS_LOCAL_DATA = "# needs the data sets in ~/data"
EXAMPLE_CORES = [core(name) for name in EXAMPLES]


def test_readme_has_the_blocks_this_test_knows():
    code = blocks()
    assert len(code) >= 7
    assert all(c in code for c in EXAMPLE_CORES)
    assert len(pages()) >= 10, pages()  # the docs pages are collected, not only the README
    for old, _ in SMOKE_EDITS:
        assert sum(old in b for b in code) == 1, old


def _params() -> list:
    """One per block; a block that trains or emulates the event twin of MNIST-5k is marked slow."""
    slow = re.compile(r"\bfit\(|\.train\(|MNIST5kEvents\(")
    return [pytest.param(i, marks=pytest.mark.slow) if slow.search(b) else i for i, b in enumerate(blocks())]


@pytest.mark.parametrize("index", _params())
def test_readme_python_block_runs(index, tmp_path, monkeypatch, one_thread):
    code = blocks()[index]
    for old, new in SMOKE_EDITS:
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    if code in EXAMPLE_CORES:
        pytest.skip("an example's core: run by tests/test_examples.py")
    namespace = {"__name__": f"readme_block_{index}"}
    if NEEDS_LOCAL_DATA in code:
        with pytest.raises(FileNotFoundError):
            exec(compile(code, f"README block {index}", "exec"), namespace)
        return
    exec(compile(code, f"README block {index}", "exec"), namespace)
