"""The results tables of README.md and docs/*.md, generated from the committed results files.

Every table of measured numbers in the README and the documentation sits between two markers::

    <!-- table: NAME -->
    ... generated text ...
    <!-- end -->

and is written by ``RENDERERS[NAME]`` from its results file (``SOURCES``), never typed by hand:

    python scripts/docs_tables.py            # rewrite every marked block in README.md and docs/**/*.md
    python scripts/docs_tables.py --check    # exit 1 naming each block that differs from its source
    python scripts/docs_tables.py --demo-results runs/demo/results.json   # keep a new demo run for the docs

``tests/test_docs_numbers.py`` runs the check (and a scan for known stale numbers); the Sphinx build runs it
too (``docs/conf.py``), so a stale table fails ``python -m sphinx -W``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = {
    "demo": (DOCS / "demo" / "quick.json", DOCS / "demo" / "default.json"),
    "demo_calib": (DOCS / "demo" / "default.json",),
    "transfer_study": (DOCS / "transfer_study" / "results.json",),
    "transfer_confirm": (DOCS / "transfer_confirm" / "results.json",),
    "transfer_headline": (DOCS / "transfer_confirm" / "results.json",),
    "bkd_study": (DOCS / "bkd_study" / "table.json",),
    "analysis": (DOCS / "analysis" / "analysis.json",),
    "calib_sweep": (DOCS / "calib_mnist5k" / "sweep.json", DOCS / "calib_mnist5k" / "train_results.json"),
    "calib_sweep_width32": (
        DOCS / "calib_mnist5k" / "sweep_width32.json",
        DOCS / "calib_mnist5k" / "train_results_width32.json",
    ),
    "calib_histogram": (DOCS / "calib_mnist5k" / "sweep.json",),
    "calib_variants": (
        DOCS / "calib_mnist5k" / "sweep.json",
        DOCS / "calib_mnist5k" / "sweep_shift_theta_skip.json",
        DOCS / "calib_mnist5k" / "sweep_iterations2.json",
    ),
}
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end -->)", re.S)
# Numbers that were once in the README and contradict a results file: none may come back.
STALE = [
    "91.8 / 73.7",  # calib demo, uncalibrated (an older run; docs/demo/default.json has 89.5 / 71.8)
    "96.7 / 96.8",  # calib demo, calibrated (older run)
    "ANN 97.0",
    "93.2 / 92.7",  # transfer demo at ratio 0.1 (the demo now runs the study's setting)
    "84.1 / 83.6 / 86.2",  # transfer demo before issue 19 (baseline / two heads / shared head)
    "97.6 / 91.5 / 93.4",  # bkd demo (older setting)
    "10,310,708",  # calib histogram of a run whose files were not kept (docs/calib_mnist5k replaces it)
    "25.20 | 45.10",  # calib width-32 table of that run
    "(96.10 / 96.10 / 96.20 / 96.20)",  # calib variants of that run
]


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _f1(x: float) -> str:
    return f"{x:.1f}"


def _per_t(xs) -> str:
    return " / ".join(_f1(x) for x in xs)


def _wall(s: float) -> str:
    return f"{s:,.0f} s"


# ----------------------------------------------------------------------------------------------------
# Renderers: results dict(s) -> Markdown
# ----------------------------------------------------------------------------------------------------


def demo_row(label: str, r: dict) -> str:
    """One row of the demo's headline table from a demo ``results.json`` (``examples/demo.py``)."""
    ev, c, t, b = r["event_vgg"], r["calib"], r["transfer"], r["bkd"]
    ep = f"{ev['epochs']} ep"
    transfer = f"{_f1(t['baseline_acc'])} / {_f1(t['transfer_acc'])} / {_f1(t['paper_acc'])}"
    if r.get("quick"):
        transfer += f" ({t['epochs']} ep)"
    if b.get("student_std"):  # several seeds: mean ± sd and the paired gain ± SE
        bkd = (
            f"{_f1(b['teacher_acc'])} / {_f1(b['student_acc'])} ± {_f1(b['student_std'])} / "
            f"{_f1(b['distilled_acc'])} ± {_f1(b['distilled_std'])} ({b['gain']:+.2f} ± {b['gain_se']:.2f})"
        )
    else:
        bkd = f"{_f1(b['teacher_acc'])} / {_f1(b['student_acc'])} / {_f1(b['distilled_acc'])}"
    return (
        f"| {label} | {_f1(ev['test_acc'])} (T={ev['T']}, {ep}) | {_f1(c['ann_acc'])} | {_per_t(c['uncalibrated'])} "
        f"| {_per_t(c['calibrated'])} | {transfer} | {bkd} | {_wall(r['wall_time_s'])} |"
    )


def render_demo(quick: dict, default: dict) -> str:
    return "\n".join(
        [
            "| run | spiking VGG on event twin | QCFS ANN | SNN uncalibrated (per T) | SNN + offset-spike "
            "calibration (per T) | transfer: baseline / transfer (shared head) / paper (two heads) | bkd: teacher / student / "
            "distilled (gain) | wall time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            demo_row("`--quick`", quick),
            demo_row("default", default),
        ]
    )


def render_demo_calib(default: dict) -> str:
    c = default["calib"]
    ts = " / ".join(str(t) for t in c["T"])
    return (
        f"The demo's default run (`docs/demo/default.json`, rho = {c['rho']}): ANN {_f1(c['ann_acc'])}; "
        f"uncalibrated {_per_t(c['uncalibrated'])}; calibrated {_per_t(c['calibrated'])} at T = {ts}."
    )


TRANSFER_ARMS = {
    "baseline": "event-only baseline",
    "full": "full method (paper defaults)",
    "alpha0": "alpha = 0 (static branch + sliding)",
    "shared_head": "one shared head (secondary arm)",
}


def render_transfer_study(study: dict) -> str:
    s = study["summary"]
    rows = [r for r in s["rows"] if r["ratio"] == s["lowest_ratio"]]
    seeds = "/".join(str(x) for x in rows[0]["seeds"])
    lines = [
        f"| arm | test % (seeds {seeds}) | mean ± sd | paired gain ± SE | val mean |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        gain = f"{r['gain_mean']:+.2f} ± {r['gain_se']:.2f}" if "gain_mean" in r else "-"
        lines.append(
            f"| {TRANSFER_ARMS.get(r['arm'], r['arm'])} | {' / '.join(_f1(a) for a in r['test'])} | "
            f"{r['test_mean']:.2f} ± {r['test_sd']:.2f} | {gain} | {r['val_mean']:.2f} |"
        )
    primary = next(r for r in rows if r["arm"] == s["primary_arm"])
    lines += [
        "",
        f"Pre-registered criterion (arm `{s['primary_arm']}`: mean paired gain > 2 SE at ratio "
        f"{s['lowest_ratio']:g}): **{s['verdict']}** ({primary['gain_mean']:+.2f} ± {primary['gain_se']:.2f} SE).",
    ]
    return "\n".join(lines)


CONFIRM_ARMS = {
    "baseline": "event-only baseline",
    "paper": "paper: two heads (the paper's defaults)",
    "shared": "**shared head** (primary arm)",
    "shared_alpha0": "shared head, alpha = 0 (no domain loss)",
    "finetune": "static pre-training, then event fine-tuning",
}


def _pm(stats: dict) -> str:
    return f"{stats['mean']:+.2f} ± {stats['se']:.2f}"


def render_transfer_confirm(study: dict) -> str:
    """The confirmatory study (issue 19): per ratio and arm, test mean ± sd and the paired gain over the
    baseline; the secondary comparisons; the verdict."""
    s = study["summary"]
    lines = [
        "| ratio | arm | test % (seeds "
        + "/".join(map(str, s["seeds"]))
        + ") | mean ± sd | gain vs baseline ± SE | val mean |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        gain = _pm(r["gain"]) if "gain" in r else "-"
        lines.append(
            f"| {r['level']:g} | {CONFIRM_ARMS.get(r['arm'], r['arm'])} | {' / '.join(_f1(a) for a in r['test'])} | "
            f"{r['test_mean']:.2f} ± {r['test_sd']:.2f} | {gain} | {r['val_mean']:.2f} |"
        )
    second = "; ".join(f"`{c['arm']} - {c['against']}` at {c['level']:g}: {_pm(c)}" for c in s["secondary"])
    primary = "; ".join(f"{p['level']:g}: {_pm(p)}" for p in s["primary"])
    lines += [
        "",
        f"Pre-registered criterion ({s['criterion']['text']}): **{s['verdict']}** ({primary}). "
        f"Secondary (no claim beyond the statistic): {second}.",
    ]
    return "\n".join(lines)


def render_transfer_headline(study: dict) -> str:
    """One line for the README: the primary arm's paired gain at each ratio and the verdict."""
    s = study["summary"]
    gains = " and ".join(f"{_pm(p)} points at event ratio {p['level']:g}" for p in s["primary"])
    return (
        f"**sj-transfer**, confirmatory pre-registered study (MNIST-5k -> noisy event twin, seeds "
        f"{s['seeds'][0]}-{s['seeds'][-1]}): one head shared by both domains gains {gains} over the event-only "
        f"baseline (criterion **{s['verdict']}**); the paper's two heads do not."
    )


def _range(xs) -> str:
    return f"{min(xs):.1f}–{max(xs):.1f}"


def render_bkd_study(study: dict) -> str:
    arms = study["arms"]
    lines = [
        "| torch threads | "
        + " | ".join(arms)
        + " | "
        + " | ".join(f"{a} − {arms[0]} (± SE)" for a in arms[1:])
        + " |",
        "| --- " * (1 + 2 * len(arms) - 1) + "|",
    ]
    settings = study["summary"]["settings"]
    for n, s in settings.items():
        cells = []
        for a in arms:
            per = [row[a] for row in s["per_seed"]]
            cells.append(f"{s['arms'][a]['mean']:.1f} ± {s['arms'][a]['sd']:.1f} ({_range(per)})")
        gains = [f"{s['gains'][a]['mean']:+.2f} ± {s['gains'][a]['se']:.2f}" for a in arms[1:]]
        lines.append(f"| {n} | " + " | ".join(cells) + " | " + " | ".join(gains) + " |")
    met = study["summary"]["criterion_met"]
    each = "; ".join(
        f"{n} thread(s): {s['gains']['mixed']['mean']:+.2f} ± {s['gains']['mixed']['se']:.2f} SE "
        f"({'met' if s['gains']['mixed']['met'] else 'not met'})"
        for n, s in settings.items()
    )
    t = study["teacher"]
    lines += [
        "",
        f"Teacher test {t['test_acc1']:.1f} %. Criterion (mean paired gain of `mixed` over the student alone > 1 "
        f"point and > 2 SE under every thread setting): **{'met' if met else 'not met'}** ({each}).",
    ]
    return "\n".join(lines)


def render_analysis(a: dict) -> str:
    acc, land = a["test_acc1_engine"], a["landscape"]
    cka = {k.split(":")[0]: v for k, v in a["cka_diagonal"].items() if "static (rows) vs event (cols)" in k}
    layers = list(next(iter(cka.values())))
    lines = [
        "| model | test % | 1-D curvature at the minimum | 2-D mean loss rise | "
        + " | ".join(f"CKA {layer}" for layer in layers)
        + " |",
        "|---" * (4 + len(layers)) + "|",
    ]
    for m in ("transfer", "baseline"):
        lines.append(
            f"| {m} | {acc[m]:.1f} | {land[m]['curvature_1d_at_theta']:.2f} | {land[m]['mean_rise_2d']:.2f} | "
            + " | ".join(f"{cka[m][layer]:.2f}" for layer in layers)
            + " |"
        )
    lines += [
        "",
        f"CKA: linear CKA between the static and the event features of each layer. {a['samples']} test samples, "
        f"T = {a['T']}, landscape loss `{a['landscape_loss']}`.",
    ]
    return "\n".join(lines)


def render_calib_sweep(sweep: dict, train: dict | None = None) -> str:
    """The sweep table of ``sj-calib sweep`` (``sweep.json``): accuracy, per-layer work and energy per T."""
    ts = sweep["T"]
    energy = lambda k: sweep[k]["energy_uJ"]  # noqa: E731
    lines = [
        "| T (main steps) | " + " | ".join(str(t) for t in ts) + " |",
        "|---" * (1 + len(ts)) + "|",
        "| QCFS ANN | " + " | ".join(f"{sweep['ann_acc']:.2f}" for _ in ts) + " |",
        "| SNN, uncalibrated | " + " | ".join(f"{x:.2f}" for x in sweep["uncalibrated"]["acc"]) + " |",
        f"| SNN + COS (rho={sweep['rho']}) | "
        + " | ".join(f"{x:.2f}" for x in sweep["calibrated"]["acc"])
        + " |",
    ]
    lat = sweep.get("latency") or {}
    if "per_layer_work" in lat and "streaming" in lat:
        lines.append(
            f"| per-layer work rho+T / streaming D*rho+T (D={lat.get('D')}) | "
            + " | ".join(f"{a} / {b}" for a, b in zip(lat["per_layer_work"], lat["streaming"]))
            + " |"
        )
    lines.append(
        "| energy uJ/sample, plain / COS (incl. pre-simulation) | "
        + " | ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(energy("uncalibrated"), energy("calibrated")))
        + " |"
    )
    if train is not None:
        lines += [
            "",
            f"Best epoch on the validation split: {train['best_val_acc1']:.1f}% val "
            f"({train['config']['epochs']} epochs, seed {train['seed']}, {train['wall_time_s']:.0f} s wall time to train on the shared machine).",
        ]
    return "\n".join(lines)


def render_calib_histogram(sweep: dict) -> str:
    """The offset-spike histogram of ``sweep.json``: neuron x sample pairs off by 0 / 1 / 2 / 3+ spikes."""
    lines = ["| layer | before calibration | after calibration |", "|---|---|---|"]
    for layer, h in sweep["offset_histogram"].items():
        fmt = lambda xs: " / ".join(f"{x:,}" for x in xs)  # noqa: E731
        lines.append(f"| `{layer}` | {fmt(h['before'])} | {fmt(h['after'])} |")
    buckets = " / ".join(next(iter(sweep["offset_histogram"].values()))["buckets"])
    return "\n".join(
        [*lines, "", f"Buckets: off by {buckets} spikes, T = {sweep['T'][-1]}, rho = {sweep['rho']}."]
    )


def render_calib_variants(*sweeps: dict) -> str:
    """Accuracy per T of calibration variants on the same network (one ``sweep.json`` each)."""
    ts = [t for t in sweeps[0]["T"] if all(t in s["T"] for s in sweeps)]  # the T every sweep ran
    lines = ["| variant | " + " | ".join(f"T={t}" for t in ts) + " |", "|---" * (1 + len(ts)) + "|"]
    for s in sweeps:
        name = f"shift={s['shift']}, saturate={s['saturate']}, iterations={s['iterations']}"
        lines.append(
            f"| {name} | " + " | ".join(f"{s['calibrated']['acc'][s['T'].index(t)]:.2f}" for t in ts) + " |"
        )
    return "\n".join(lines)


RENDERERS = {
    "demo": render_demo,
    "demo_calib": render_demo_calib,
    "transfer_study": render_transfer_study,
    "transfer_confirm": render_transfer_confirm,
    "transfer_headline": render_transfer_headline,
    "bkd_study": render_bkd_study,
    "analysis": render_analysis,
    "calib_sweep": render_calib_sweep,
    "calib_sweep_width32": render_calib_sweep,
    "calib_histogram": render_calib_histogram,
    "calib_variants": render_calib_variants,
}


def render(name: str) -> str:
    """The generated text of block ``name`` from its results file(s)."""
    if name not in RENDERERS:
        raise ValueError(f"table: unknown block name {name!r}; expected one of {sorted(RENDERERS)}")
    return RENDERERS[name](*(_load(p) for p in SOURCES[name])).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------------
# Marked blocks in the Markdown files
# ----------------------------------------------------------------------------------------------------


def pages() -> list[Path]:
    """README.md and every hand-written Markdown page of the docs (not the build, not the results folders)."""
    skip = ("_build", "transfer_study", "transfer_confirm", "bkd_study", "analysis", "notebooks")
    docs = [p for p in sorted(DOCS.rglob("*.md")) if not any(s in p.relative_to(DOCS).parts for s in skip)]
    return [ROOT / "README.md", *docs]


def regenerate(text: str) -> str:
    """``text`` with every marked block re-rendered from its source (a block whose file is missing is kept)."""

    def one(m: re.Match) -> str:
        try:
            return m.group(1) + render(m.group("name")) + m.group(4)
        except FileNotFoundError as e:
            print(
                f"block {m.group('name')!r} kept as it is: results file missing: {e.filename}",
                file=sys.stderr,
            )
            return m.group(0)

    return BLOCK.sub(one, text)


def problems_in(text: str, where: str) -> list[str]:
    """Each marked block of ``text`` that differs from its results file, and each stale number in it."""
    bad = []
    for m in BLOCK.finditer(text):
        try:
            want = render(m.group("name"))
        except FileNotFoundError as e:
            bad.append(f"{where}: block {m.group('name')!r}: results file missing: {e.filename}")
            continue
        if m.group("body") != want:
            bad.append(f"{where}: block {m.group('name')!r} differs from its results file")
    bad += [f"{where}: stale number {pattern!r}" for pattern in STALE if pattern in text]
    return bad


def stale_blocks() -> list[str]:
    """:func:`problems_in` over the README and every docs page."""
    return [
        problem
        for path in pages()
        for problem in problems_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]


def keep_demo_results(results_json: Path) -> Path:
    """Copy the headline numbers of a demo run's ``results.json`` into ``docs/demo/{quick,default}.json``."""
    r = _load(results_json)
    missing = [s for s in ("event_vgg", "calib", "transfer", "bkd") if s not in r or "skipped" in r[s]]
    if missing:
        raise ValueError(f"{results_json}: expected a demo run of every section, missing {missing}")
    keep = {
        "source": f"examples/demo.py{' --quick' if r['quick'] else ''} results.json (headline numbers)",
        **{k: r[k] for k in ("quick", "seed", "threads", "wall_time_s")},
        "event_vgg": {
            k: v for k, v in r["event_vgg"].items() if k in ("T", "epochs", "test_acc", "best_val_acc")
        },
        "calib": {k: r["calib"][k] for k in ("ann_acc", "T", "rho", "uncalibrated", "calibrated")},
        "transfer": {k: v for k, v in r["transfer"].items() if k != "curves"},
        "bkd": {k: v for k, v in r["bkd"].items() if k not in ("curves", "details")},
    }
    out = DOCS / "demo" / ("quick.json" if r["quick"] else "default.json")
    out.write_text(json.dumps(keep, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 naming each stale block")
    ap.add_argument("--demo-results", type=Path, help="a demo run's results.json to keep in docs/demo/")
    args = ap.parse_args(argv)
    if args.demo_results:
        print(f"wrote {keep_demo_results(args.demo_results)}")
    if args.check:
        bad = stale_blocks()
        print("\n".join(bad) or "every table matches its results file")
        return 1 if bad else 0
    for path in pages():
        text = path.read_text(encoding="utf-8")
        new = regenerate(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
