"""sj_bkd dropped into SpikingJelly's own SEW-ResNet-18 (model zoo), distilled from a torchvision ResNet-18.

The part between the snippet markers is the README's sj-bkd snippet, verbatim (tests/test_examples.py checks
it). It trains the teacher briefly first, because nothing is downloaded here; with a trained teacher, load
its weights instead. Data: the embedded MNIST-5k digits, repeated to 3 channels (28x28: layer4 is 1x1).

    python examples/dropin_bkd.py                # 200 student steps
    python examples/dropin_bkd.py --steps 12 --teacher-steps 30   # the test setting (under a minute, 1 thread)

Prints the teacher's and the student's test accuracy (%, all 1,000 test digits).
"""

# ruff: noqa: E402 - a script: the snippet's imports follow the argument parsing, as a user's code would start
import argparse

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--steps", type=int, default=200, help="student training iterations")
p.add_argument("--teacher-steps", type=int, default=100, help="teacher training iterations")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
from sj_common.threads import apply_thread_policy

apply_thread_policy(1)
import torch

torch.manual_seed(args.seed)
steps, teacher_steps = args.steps, args.teacher_steps

# --- snippet start ---
import torch
import torch.nn.functional as F
from sj_common.data import MNIST5k
from spikingjelly.activation_based import functional, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet
from torch.utils.data import DataLoader
from torchvision.models import resnet18

from sj_bkd import BlurredDistillationHead, FeatureTap, wsld_loss

# steps / teacher_steps: training iterations (the example's --steps / --teacher-steps)
T = 2  # the student's time steps; a static image is repeated over them


def rgb(x):  # MNIST [1, 28, 28] -> [3, 28, 28] for the ImageNet-style stems
    return x.expand(3, -1, -1)


def batches(n):  # n training batches (x [B, 3, 28, 28], y [B]), epoch after epoch
    loader = DataLoader(MNIST5k("train", transform=rgb), batch_size=32, shuffle=True)
    while True:
        for batch in loader:
            if n == 0:
                return
            n -= 1
            yield batch


def accuracy(model, multistep):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(MNIST5k("test", transform=rgb), batch_size=200):
            z = model(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0) if multistep else model(x)
            correct += int((z.argmax(1) == y).sum())
            functional.reset_net(model)
    return 100.0 * correct / 1000


# The teacher: a torchvision ResNet-18 (trained here for a few steps; load your trained one instead).
teacher = resnet18(num_classes=10)
opt_t = torch.optim.Adam(teacher.parameters(), lr=1e-3)
for x, y in batches(teacher_steps):
    loss = F.cross_entropy(teacher(x), y)
    opt_t.zero_grad()
    loss.backward()
    opt_t.step()
teacher.eval().requires_grad_(False)  # frozen from here on

# The student: SpikingJelly's SEW-ResNet-18 (ADD shortcuts), multi-step: [T, B, 3, H, W] -> [T, B, 10].
student = sew_resnet.sew_resnet18(
    cnf="ADD",
    spiking_neuron=neuron.IFNode,
    surrogate_function=surrogate.ATan(),
    detach_reset=True,
    num_classes=10,
)
functional.set_step_mode(student, "m")
s_tap, t_tap = FeatureTap(student, "layer4"), FeatureTap(teacher, "layer4", detach=True)
head = BlurredDistillationHead(512, 512)  # student / teacher channels at the tapped layers
opt = torch.optim.Adam([*student.parameters(), *head.parameters()], lr=1e-3)  # the head trains too
student.train()
for x, y in batches(steps):
    z_s = student(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0)  # [T, B, 10] -> mean over T
    with torch.no_grad():
        z_t = teacher(x)
    loss = F.cross_entropy(z_s, y) + head(s_tap.pop(), t_tap.pop()) + wsld_loss(z_s, z_t, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    functional.reset_net(student)  # the neurons keep their state between calls: reset after every batch
print(f"teacher test accuracy: {accuracy(teacher, False):.1f} %")
print(f"student test accuracy: {accuracy(student, True):.1f} %")
# --- snippet end ---
