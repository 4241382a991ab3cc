"""BKD overhead on the student's training step, measured side by side (interleaved, medians).

Prints:
* distilled step (student + BlurredDistillationHead + WSLD, teacher outputs precomputed) / plain step
  (student + CE). Goal: <= 1.05.
* the teacher forward's share of the whole distilled step (teacher forward + distilled step).

    python benchmarks/bkd.py [--student sew_tiny --teacher cnn_tiny --batch 32 --T 4 --reps 15]
    # the paper's ImageNet scale (SEW-ResNet18 from ResNet-18, layer4 7x7x512, 224x224), ~1 min on a CPU:
    python benchmarks/bkd.py --student sew_resnet18 --student-kwargs "" --teacher resnet18 --teacher-kwargs "" \
        --size 224 --in-channels 3 --batch 8 --T 4 --reps 5

Measured on an idle 2-core CPU: 0.999 and 1.001 at the ImageNet scale; 1.06 at 64x64 (layer4 2x2, batch 16);
1.10-1.13 for the tiny embedded default, where the head (19 k parameters) is 3x the student and the fixed
cost of its extra ops and optimizer update is not amortised.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from sj_bkd.head import BlurredDistillationHead
from sj_bkd.logits import wsld_loss
from sj_bkd.models import STUDENTS, TEACHERS, create_model
from sj_bkd.taps import FeatureTap
from spikingjelly.activation_based import functional


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
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    student = create_model(args.student, num_classes=10, **kw(args.student_kwargs)).to(dev)
    teacher = create_model(args.teacher, num_classes=10, **kw(args.teacher_kwargs)).to(dev)
    s_tap = FeatureTap(student, STUDENTS[args.student][1])
    t_tap = FeatureTap(teacher, TEACHERS[args.teacher][1], detach=True)
    x = torch.rand(args.batch, args.in_channels, args.size, args.size, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    xs = x.unsqueeze(0).repeat(args.T, 1, 1, 1, 1)
    with torch.no_grad():
        z_t = teacher(x)
        f_t = t_tap.pop()
    student(xs)
    f_s = s_tap.pop()
    functional.reset_net(student)
    head = BlurredDistillationHead(f_s.shape[2], f_t.shape[1]).to(dev)
    opt_plain = torch.optim.AdamW(student.parameters(), 1e-4)
    opt_dist = torch.optim.AdamW([*student.parameters(), *head.parameters()], 1e-4)

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def plain():
        z = student(xs).mean(0)
        s_tap.clear()
        loss = F.cross_entropy(z, y)
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()
        functional.reset_net(student)

    def distilled():
        z = student(xs).mean(0)
        loss = F.cross_entropy(z, y) + head(s_tap.pop(), f_t) + wsld_loss(z, z_t, y)
        opt_dist.zero_grad()
        loss.backward()
        opt_dist.step()
        functional.reset_net(student)

    def teacher_fwd():
        with torch.no_grad():
            teacher(x)
        t_tap.clear()

    times = {"plain": [], "distilled": [], "teacher": []}
    fns = {"plain": plain, "distilled": distilled, "teacher": teacher_fwd}
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
