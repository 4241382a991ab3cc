"""Regenerate the README's figures (docs/*.png) from a demo run.

    python examples/demo.py --out runs/demo            # the default run (the committed figures come from one)
    python scripts/make_figures.py [--demo runs/demo] [--out docs] [--nmnist FILE]

Reads the demo's output folder (``examples/demo.py --out DIR``, default or ``--quick``) and draws, small
(palette PNGs of about 10 kB):

* ``docs/events.png``: a real N-MNIST recording beside the emulator's twin of an MNIST-5k digit, as ON/OFF
  frames (the recording: ``--nmnist FILE``, default the project's test fixture
  ``../shared/fixtures/events/sample_nmnist.bin``; without it, two emulated digits);
* ``docs/calib_accuracy_vs_T.png``: QCFS ANN, plain and calibrated SNN against T (the demo's sweep);
* ``docs/bkd_distillation.png``: teacher / student / distilled accuracy and their validation curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "events" / "sample_nmnist.bin"


def main(argv=None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=ROOT / "runs" / "demo", help="a demo output folder")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--nmnist", type=Path, default=FIXTURE, help="a real N-MNIST .bin recording (a 4)")
    ap.add_argument("--dpi", type=int, default=80)
    args = ap.parse_args(argv)

    from sj_common.data import MNIST5k, SaccadeEmulator

    from sj_bkd import plots as bkd_plots
    from sj_calib import plots as calib_plots
    from sj_common import plots

    if not (args.demo / "results.json").is_file():
        sys.exit(
            f"make_figures: no {args.demo / 'results.json'}; run: python examples/demo.py --out {args.demo}"
        )
    res = json.loads((args.demo / "results.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    # 1. events: real recording beside the emulated twin
    test = MNIST5k("test")
    rows = {}
    digit = 4  # the fixture records a handwritten 4
    if args.nmnist.is_file():
        from sj_common.show import read_event_file

        rows["real N-MNIST"], _, _ = read_event_file(args.nmnist, "nmnist")
    else:
        print(f"no {args.nmnist}: drawing two emulated digits", flush=True)
        j = int((test.targets == 7).nonzero()[0][0])
        rows["emulated\n(a 7)"] = SaccadeEmulator()(test.images[j], seed=[0, j])
    i = int((test.targets == digit).nonzero()[0][0])
    rows["emulated twin"] = SaccadeEmulator()(test.images[i], seed=[0, i])
    title = f"ON (red) / OFF (blue) events; twin: MNIST-5k test #{i} through the saccade emulator"
    fig = plots.plot_event_frames(rows, T=6, sensor_size=(34, 34, 2), panel=1.0, title=title)
    written.append(plots.save_figure(fig, args.out / "events.png", dpi=args.dpi))

    # 2. calib: accuracy against T
    sweeps = sorted((args.demo / "calib").rglob("sweep.json"))
    if sweeps:
        sweep = json.loads(sweeps[0].read_text())
        title = f"MNIST-5k, {'--quick' if res.get('quick') else 'default'} demo"
        fig = calib_plots.plot_accuracy_vs_T(sweep, title=title)
        written.append(plots.save_figure(fig, args.out / "calib_accuracy_vs_T.png", dpi=args.dpi))

    # 3. bkd: accuracies and validation curves
    b = res.get("bkd", {})
    if "distilled_acc" in b:
        acc = {"teacher": b["teacher_acc"], "student": b["student_acc"], "distilled": b["distilled_acc"]}
        hist = {}
        for name, curve in b.get("curves", {}).items():
            key = "teacher" if "teacher" in name else "distilled" if "distill" in name else "student"
            hist.setdefault(key, curve)
        err = {"student": b.get("student_std", 0.0), "distilled": b.get("distilled_std", 0.0)}
        fig = bkd_plots.plot_distillation(acc, hist, errors=err, title="limited-data student, MNIST-5k")
        written.append(plots.save_figure(fig, args.out / "bkd_distillation.png", dpi=args.dpi))

    for p in written:
        print(f"wrote {p} ({p.stat().st_size // 1024} kB)")
    return written


if __name__ == "__main__":
    main()
