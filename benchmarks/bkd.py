"""BKD overhead on the student's training step, measured side by side (interleaved, medians).

Prints:
* distilled step (student + BlurredDistillationHead + WSLD, teacher outputs precomputed) / plain step
  (student + CE). Goal: <= 1.05.
* the teacher forward's share of the whole distilled step (teacher forward + distilled step).

    python benchmarks/bkd.py [--student sew_tiny --teacher cnn_tiny --batch 32 --T 4 --reps 15]
    # the paper's ImageNet scale (SEW-ResNet18 from ResNet-18, layer4 7x7x512, 224x224), ~1 min on a CPU:
    python benchmarks/bkd.py --student sew_resnet18 --student-kwargs "" --teacher resnet18 --teacher-kwargs "" \
        --size 224 --in-channels 3 --batch 8 --T 4 --reps 5

``build_steps`` is also timed on a GPU by ``benchmarks/gpu.py`` (AMP, peak memory).

Measured on an idle 2-core CPU: 0.999 and 1.001 at the ImageNet scale; 1.06 at 64x64 (layer4 2x2, batch 16);
1.10-1.13 for the tiny embedded default, where the head (19 k parameters) is 3x the student and the fixed
cost of its extra ops and optimizer update is not amortised.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from sj_bkd.head import BlurredDistillationHead
from sj_bkd.logits import wsld_loss
from sj_bkd.models import STUDENTS, TEACHERS, create_model
from sj_bkd.taps import FeatureTap
from sj_common.compat import set_fastest_backend
from sj_common.engine.util import autocast
from spikingjelly.activation_based import functional


def build_steps(
    student: str,
    teacher: str,
    *,
    student_kwargs: dict | None = None,
    teacher_kwargs: dict | None = None,
    batch: int = 32,
    T: int = 4,
    size: int = 28,
    in_channels: int = 1,
    classes: int = 10,
    device: str | torch.device = "cpu",
    amp: str = "off",
) -> tuple[dict[str, Callable[[], None]], torch.nn.Module, torch.nn.Module]:
    """``({"plain": f, "distilled": f, "teacher": f}, student, head)`` on synthetic data on ``device``.

    plain: student + CE, one optimizer step; distilled: student + BlurredDistillationHead + WSLD with the
    teacher's outputs precomputed, one step; teacher: the teacher's forward alone. ``amp``: ``"off"`` or
    an autocast dtype (``"float16"`` with a GradScaler, as the engine does; CUDA only).
    """
    dev = torch.device(device)
    torch.manual_seed(0)
    student_net = set_fastest_backend(
        create_model(student, num_classes=classes, **(student_kwargs or {})).to(dev), dev
    )
    teacher_net = create_model(teacher, num_classes=classes, **(teacher_kwargs or {})).to(dev)
    s_tap = FeatureTap(student_net, STUDENTS[student][1])
    t_tap = FeatureTap(teacher_net, TEACHERS[teacher][1], detach=True)
    x = torch.rand(batch, in_channels, size, size, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)
    xs = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
    with torch.no_grad():
        z_t = teacher_net(x)
        f_t = t_tap.pop()
        student_net(xs)
    f_s = s_tap.pop()
    functional.reset_net(student_net)
    head = BlurredDistillationHead(f_s.shape[2], f_t.shape[1]).to(dev)
    opt_plain = torch.optim.AdamW(student_net.parameters(), 1e-4)
    opt_dist = torch.optim.AdamW([*student_net.parameters(), *head.parameters()], 1e-4)
    on = amp != "off" and dev.type == "cuda"
    dtype = "float16" if amp == "off" else amp
    scaler = torch.amp.GradScaler(dev.type, enabled=on and amp == "float16")

    def update(loss, opt):
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        functional.reset_net(student_net)

    def plain():
        with autocast(dev, on, dtype):
            z = student_net(xs).mean(0)
            s_tap.clear()
            loss = F.cross_entropy(z, y)
        update(loss, opt_plain)

    def distilled():
        with autocast(dev, on, dtype):
            z = student_net(xs).mean(0)
            loss = F.cross_entropy(z, y) + head(s_tap.pop(), f_t) + wsld_loss(z, z_t, y)
        update(loss, opt_dist)

    def teacher_fwd():
        with torch.no_grad(), autocast(dev, on, dtype):
            teacher_net(x)
        t_tap.clear()

    return {"plain": plain, "distilled": distilled, "teacher": teacher_fwd}, student_net, head


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="sew_tiny")
    ap.add_argument("--student-kwargs", default="width=8")
    ap.add_argument("--teacher", default="cnn_tiny")
    ap.add_argument("--teacher-kwargs", default="width=8")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    kw = lambda s: {k: int(v) for k, v in (p.split("=") for p in s.split(",") if p)}  # noqa: E731
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    fns, student, head = build_steps(
        args.student,
        args.teacher,
        student_kwargs=kw(args.student_kwargs),
        teacher_kwargs=kw(args.teacher_kwargs),
        batch=args.batch,
        T=args.T,
        size=args.size,
        in_channels=args.in_channels,
        device=dev,
    )

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    times = {"plain": [], "distilled": [], "teacher": []}
    for f in fns.values():  # warm-up
        f()
    for _ in range(args.reps):
        for k, f in fns.items():
            sync()
            t = time.perf_counter()
            f()
            sync()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"device={dev} student={args.student} teacher={args.teacher} batch={args.batch} T={args.T} reps={args.reps}"
    )
    print(
        f"head params: {sum(p.numel() for p in head.parameters())}, student params: {sum(p.numel() for p in student.parameters())}"
    )
    print(
        f"median ms: plain {1e3 * med['plain']:.1f}, distilled {1e3 * med['distilled']:.1f}, teacher fwd {1e3 * med['teacher']:.1f}"
    )
    print(f"distilled / plain step (teacher excluded): {med['distilled'] / med['plain']:.3f}  (goal <= 1.05)")
    print(
        f"teacher forward share of the whole step: {med['teacher'] / (med['teacher'] + med['distilled']):.3f}"
    )


if __name__ == "__main__":
    main()
