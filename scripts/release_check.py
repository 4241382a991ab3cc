"""Release check: the four packages build, pass ``twine check``, and install and run together from their wheels.

    .venv/bin/python scripts/release_check.py            # what .ci/run runs (needs build and twine)

1. ``python -m build`` each package (the sdist, then the wheel built from that sdist), ``twine check --strict``.
2. Every wheel and sdist: the lockstep version, each plugin's sj-common bound, the reference-source entry
   points, the packaged configs (every ``configs/*.yaml`` of the source tree) and the LICENSE.
3. A fresh virtual environment with torch==2.14.1 and torchvision==0.29.1, then the four wheels (not
   editable; sj-common with its ``demo`` extra for the embedded data), ``pip check``.
4. In that environment, from an empty folder and with no PYTHONPATH (nothing of the checkout can be
   imported), as subprocesses: each console script's ``--help``, ``sj-calib configs``, one import of every
   public name (each module's ``__all__``), each reference source found through its entry point, and a
   one-step ``sj-calib train``.

Exits non-zero at the first failure, naming it; prints each step's wall time. Standard library only: the
``--smoke`` part runs inside the fresh environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from set_version import PACKAGES, requirement_spec  # noqa: E402  (scripts/ is not a package)

PLUGINS = PACKAGES[1:]
SCRIPTS = {"sj_common": "sj-common", "sj_calib": "sj-calib", "sj_bkd": "sj-bkd", "sj_transfer": "sj-transfer"}
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]
GROUP = "sj_common.reference_sources"
ONE_STEP = (
    "train --config mnist5k --set model.width=4 --epochs 1 --max-steps-per-epoch 1 --batch-size 16 "
    "--no-progress --no-tensorboard --threads 1"
).split()


def fail(message: str) -> None:
    raise SystemExit(f"release check FAILED: {message}")


def run(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None, quiet: bool = False) -> str:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}")
    if not quiet and p.stdout.strip():
        print(p.stdout.rstrip())
    return p.stdout


def version() -> str:
    text = (ROOT / "sj_common" / "src" / "sj_common" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE).group(1)


# ----------------------------------------------------------------------------------------- build, check


def build(dist: Path, python: str, work: Path) -> None:
    """Each package is built from a copy of its folder, so the checkout gets no ``*.egg-info`` (which would
    put a second, older metadata of the package on the path of the editable install)."""
    for pkg in PACKAGES:
        src = work / "src" / pkg
        shutil.copytree(ROOT / pkg, src, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
        run([python, "-m", "build", "--outdir", dist, src], quiet=True)
    run([python, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])


def check_artifacts(dist: Path, v: str) -> None:
    """Version, sj-common bound, entry points, configs and LICENSE in every wheel and sdist."""
    licence = (ROOT / "LICENSE").read_text()
    for pkg in PACKAGES:
        wheels = list(dist.glob(f"{pkg}-{v}-py3-none-any.whl"))
        sdists = list(dist.glob(f"{pkg}-{v}.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            fail(
                f"{pkg}: expected one wheel and one sdist of version {v} in {dist}: {sorted(os.listdir(dist))}"
            )
        configs = {p.name for p in (ROOT / pkg / "src" / pkg / "configs").glob("*.yaml")}
        with zipfile.ZipFile(wheels[0]) as z:
            names = z.namelist()
            info = f"{pkg}-{v}.dist-info"
            meta = z.read(f"{info}/METADATA").decode()
            entry = z.read(f"{info}/entry_points.txt").decode() if f"{info}/entry_points.txt" in names else ""
            wheel_licence = [n for n in names if n.startswith(f"{info}/") and "LICENSE" in n]
            if not wheel_licence or z.read(wheel_licence[0]).decode() != licence:
                fail(f"{wheels[0].name}: no LICENSE equal to the repository's ({wheel_licence})")
        if f"\nVersion: {v}\n" not in meta:
            fail(f"{wheels[0].name}: METADATA does not say Version: {v}")
        packaged = {n.rsplit("/", 1)[1] for n in names if re.fullmatch(rf"{pkg}/configs/[^/]+\.yaml", n)}
        if packaged != configs:
            fail(f"{wheels[0].name}: configs {sorted(packaged)} != the source tree's {sorted(configs)}")
        with tarfile.open(sdists[0]) as t:
            in_sdist = {
                Path(n).name for n in t.getnames() if f"/src/{pkg}/configs/" in n and n.endswith(".yaml")
            }
        if in_sdist != configs:
            fail(f"{sdists[0].name}: configs {sorted(in_sdist)} != the source tree's {sorted(configs)}")
        if f"[console_scripts]\n{SCRIPTS[pkg]} = " not in entry:
            fail(f"{wheels[0].name}: no console script {SCRIPTS[pkg]} in entry_points.txt")
        if pkg == "sj_common":
            continue
        want = set(requirement_spec(v).split(","))
        bounds = re.findall(r"^Requires-Dist: sj-common(?:\[[\w,]+\])?([^;\n]*)", meta, re.MULTILINE)
        if not bounds or any(set(b.strip().split(",")) != want for b in bounds):
            fail(f"{wheels[0].name}: sj-common requirements {bounds}, expected {sorted(want)} on each")
        if f"[{GROUP}]" not in entry:
            fail(f"{wheels[0].name}: no [{GROUP}] entry point")
    print(
        f"artifacts: 4 wheels + 4 sdists of {v}: versions, sj-common bounds, entry points, configs, LICENSE ok"
    )


def install(venv: Path, dist: Path, v: str, base_python: str) -> Path:
    run([base_python, "-m", "venv", venv])
    py = venv / "bin" / "python"
    run([py, "-m", "pip", "install", "-q", *TORCH])
    wheels = [
        f"{dist / f'{pkg}-{v}-py3-none-any.whl'}{'[demo]' if pkg == 'sj_common' else ''}" for pkg in PACKAGES
    ]
    run([py, "-m", "pip", "install", "-q", *wheels])
    run([py, "-m", "pip", "check"])
    return py


# ---------------------------------------------------------------------------------- inside the fresh venv

_IMPORT_ALL = """
import importlib, pkgutil, sys
count = 0
for top in {packages!r}:
    pkg = importlib.import_module(top)
    if "site-packages" not in pkg.__file__:
        raise SystemExit(f"{{top}} imported from {{pkg.__file__}}, not from the installed wheel")
    for info in [None, *pkgutil.walk_packages(pkg.__path__, top + ".")]:
        mod = pkg if info is None else importlib.import_module(info.name)
        for name in getattr(mod, "__all__", ()):
            getattr(mod, name)
            count += 1
print(count, "public names imported")
"""

_SOURCES = """
import sys
from sj_common.reference import PROVIDERS, get_source
for name in sorted(PROVIDERS):
    mod = get_source(name).convert.__module__
    assert mod in sys.modules, mod
    print(name, "->", mod)
"""


def smoke(v: str) -> None:
    """Run as the fresh environment's python, from an empty folder."""
    bin_ = Path(sys.executable).parent
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in SCRIPTS.values():
        out = run([bin_ / name, "--help"], env=env, quiet=True)
        if "usage:" not in out:
            fail(f"{name} --help printed no usage")
    print(f"--help of {', '.join(SCRIPTS.values())}: ok")
    out = run([bin_ / "sj-calib", "configs"], env=env, quiet=True)
    if not re.search(r"^mnist5k\s", out, re.MULTILINE):
        fail(f"sj-calib configs does not list mnist5k:\n{out}")
    print(f"sj-calib configs: {len(out.splitlines())} configs")
    run([sys.executable, "-c", _IMPORT_ALL.format(packages=PACKAGES)], env=env)
    run([sys.executable, "-c", _SOURCES], env=env)
    out_dir = Path.cwd() / "calib_run"
    t = time.time()
    run([bin_ / "sj-calib", *ONE_STEP, "--out", out_dir], env=env, quiet=True)
    results = json.loads((out_dir / "results.json").read_text())
    versions = results.get("versions", {})
    if any(versions.get(SCRIPTS[p]) != v for p in PACKAGES):
        fail(f"results.json versions {versions}: expected {v} for each of the four packages")
    print(f"sj-calib train (1 step): {time.time() - t:.0f} s, results.json records the four versions {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="runs build and twine (default: this one)")
    ap.add_argument("--base-python", default="python3", help="makes the fresh environment (default python3)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # inside the fresh environment
    args = ap.parse_args(argv)
    os.environ.pop("PYTHONPATH", None)  # the installed wheels are under test, never a source tree
    v = version()
    if args.smoke:
        smoke(v)
        return 0
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="sj-release-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        dist, venv, empty = work / "dist", work / "venv", work / "run"
        empty.mkdir(exist_ok=True)
        steps = [
            ("build + twine check", lambda: build(dist, args.python, work)),
            ("artifacts", lambda: check_artifacts(dist, v)),
            ("fresh venv + wheels", lambda: install(venv, dist, v, args.base_python)),
            (
                "installed smoke",
                lambda: run([venv / "bin" / "python", Path(__file__).resolve(), "--smoke"], cwd=empty),
            ),
        ]
        for label, step in steps:
            t = time.time()
            print(f"== release check: {label}", flush=True)
            step()
            print(f"   {label}: {time.time() - t:.0f} s", flush=True)
    print(f"release check passed ({v}) in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
