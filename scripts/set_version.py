"""Set the one version of the four sj-plugins packages and each plugin's sj-common bound (lockstep policy).

    python scripts/set_version.py 0.2.0

The four packages (sj-common, sj-calib, sj-bkd, sj-transfer) share one version, stated in each package's
``__version__`` (``<pkg>/src/<pkg>/__init__.py``; the pyproject.toml files read it); they are built, tested
and released together. A plugin of version X.Y.Z requires ``sj-common>=X.Y.Z,<X.(Y+1)`` while X is 0 and
``sj-common>=X.Y.Z,<(X+1)`` from 1.0 on: a later sj-common patch (0.x) or minor (>= 1.0) release must not
break an installed plugin; anything else bumps the next minor (0.x) / major version.
``tests/test_release.py`` checks that every place agrees.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sj_common", "sj_calib", "sj_bkd", "sj_transfer")
_VERSION = re.compile(r'^__version__ = "[^"]*"$', re.MULTILINE)
# "sj-common" or "sj-common[extra]" with any version specifier, inside a quoted requirement
_REQUIREMENT = re.compile(r'"sj-common(\[[\w,]+\])?[^"]*"')


def upper_bound(version: str) -> str:
    """The first sj-common version a plugin of ``version`` does not accept (see the module docstring)."""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if m is None:
        raise ValueError(f"version: expected X.Y.Z (three integers), got {version!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    return f"0.{minor + 1}" if major == 0 else f"{major + 1}"


def requirement_spec(version: str) -> str:
    """The specifier every plugin puts on sj-common for ``version``: ``>=version,<upper_bound``."""
    return f">={version},<{upper_bound(version)}"


def set_version(version: str, root: Path = ROOT) -> list[Path]:
    """Write ``version`` into every ``__version__`` and the plugins' sj-common requirements; returns the files."""
    spec = requirement_spec(version)
    changed = []
    for pkg in PACKAGES:
        init = root / pkg / "src" / pkg / "__init__.py"
        text = init.read_text()
        if len(_VERSION.findall(text)) != 1:
            raise SystemExit(f"{init}: expected one line '__version__ = \"...\"'")
        init.write_text(_VERSION.sub(f'__version__ = "{version}"', text))
        changed.append(init)
        if pkg == "sj_common":
            continue
        project = root / pkg / "pyproject.toml"
        text = project.read_text()
        project.write_text(_REQUIREMENT.sub(lambda m: f'"sj-common{m.group(1) or ""}{spec}"', text))
        changed.append(project)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__)
        return 2
    for path in set_version(args[0]):
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
