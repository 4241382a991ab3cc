"""sj_calib on your own CNN: QCFS training, conversion to a SpikingJelly IF network, offset-spike calibration.

The part between the snippet markers is the README's sj-calib snippet, verbatim (tests/test_examples.py
checks it). The CNN is a plain torchvision-style ``nn.Sequential`` (conv-BN-ReLU, pooling, linear) trained
on the embedded MNIST-5k digits.

    python examples/dropin_calib.py               # 300 training iterations
    python examples/dropin_calib.py --steps 60    # the test setting (under a minute, 1 thread)

Prints the test accuracy (%, all 1,000 test digits) of the QCFS ANN, and of the converted SNN without and
with calibration at T = 1, 2, 4.
"""

# ruff: noqa: E402 - a script: the snippet's imports follow the argument parsing, as a user's code would start
import argparse

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--steps", type=int, default=300, help="training iterations of the QCFS ANN")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
from sj_common.threads import apply_thread_policy

apply_thread_policy(1)
import torch

torch.manual_seed(args.seed)
steps = args.steps

# --- snippet start ---
import torch
import torch.nn.functional as F
from sj_common.data import MNIST5k
from torch import nn
from torch.utils.data import DataLoader

from sj_calib import calibrate, convert, replace_maxpool_by_avgpool, replace_relu_by_qcfs

# steps: training iterations (the example's --steps)
my_cnn = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
)  # fmt: skip
# init_threshold: where each QCFS clipping threshold lambda starts (it is learned). The default 8.0 is sized
# for CIFAR/ImageNet activations; after BatchNorm, on [0, 1] images, activations are of order 1, and with
# lambda far above them a short training leaves most of them in the lowest of the L levels, so the SNN
# needs many steps. 2.0 starts lambda near the activations' range.
ann = replace_relu_by_qcfs(replace_maxpool_by_avgpool(my_cnn), L=4, init_threshold=2.0)
opt = torch.optim.SGD(ann.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
loader = DataLoader(MNIST5k("train"), batch_size=32, shuffle=True)  # x [B, 1, 28, 28], y [B]
i = 0
ann.train()
while i < steps:
    for x, y in loader:
        loss = F.cross_entropy(ann(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        i += 1
        if i == steps:
            break
ann.eval()

snn = convert(ann)  # a SpikingJelly IF network: static [B, 1, 28, 28] with T -> [T, B, 10]
cos = calibrate(snn, rho=4)  # offset-spike calibrated copy (rho pre-simulation steps per layer)
test = DataLoader(MNIST5k("test"), batch_size=250)
with torch.no_grad():
    ann_acc = sum(int((ann(x).argmax(1) == y).sum()) for x, y in test) / 10
    print(f"QCFS ANN: {ann_acc:.1f} %")
    for T in (1, 2, 4):
        plain = sum(int((snn(x, T=T).mean(0).argmax(1) == y).sum()) for x, y in test) / 10
        calibrated = sum(int((cos(x, T=T).mean(0).argmax(1) == y).sum()) for x, y in test) / 10
        print(f"T={T}: SNN {plain:.1f} %, calibrated SNN {calibrated:.1f} %")
# --- snippet end ---
