"""Docstrings, comments and config comments say what they mean: none cites a spec file or a section of one
that is not in the repository (``shared/methods/calib.md section 3``, "spec 5.3 item 18", "pitfall 9")."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATIONS = re.compile(
    r"shared/(?:methods|notes|fixtures)"  # the specs and notes folder beside the repository
    r"|\b(?:bkd|calib|transfer|design)\.md\b"  # the spec files themselves
    r"|\bspec(?:'s)?[ :]+(?:\d|section|appendix|pitfall|item|shared)"  # "spec 5.3", "spec section 2", "spec: shared/..."
    r"|\b(?:spec|section|appendix)\s+\d+(?:\.\d+)*\s+item\b"
    r"|\bspec(?:'s)? pitfalls?\b|\bpitfalls? \d|\bappendix \d",
    re.IGNORECASE,
)


def test_no_citation_of_spec_files_outside_the_repository():
    files = sorted(ROOT.glob("sj_*/src/**/*.py")) + sorted(ROOT.glob("sj_*/src/**/configs/*.yaml"))
    assert len(files) > 50
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in files
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CITATIONS.search(line)
    ]
    assert not hits, "say what the spec says instead of citing it:\n" + "\n".join(hits)
