"""sj_transfer dropped into a feature extractor built by SpikingJelly's own ``SpikingVGG.make_layers``.

The part between the snippet markers is the README's sj-transfer snippet, verbatim (tests/test_examples.py
checks it): the domain loss and the sliding replacement around your own multi-step network, trained on the
embedded MNIST-5k digits (static) and their emulated event twin, 10 % of the event samples (35 per class).

    python examples/dropin_transfer.py               # 120 iterations
    python examples/dropin_transfer.py --steps 40    # the test setting (under a minute, 1 thread)

Prints the event test accuracy (%, all 1,000 test samples). One classifier head serves both domains,
the setting the confirmatory study recommends (docs/transfer_confirm/); the paper used two.
"""

# ruff: noqa: E402 - a script: the snippet's imports follow the argument parsing, as a user's code would start
import argparse

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--steps", type=int, default=120, help="training iterations of the whole run")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
from sj_common.threads import apply_thread_policy

apply_thread_policy(1)
import torch

torch.manual_seed(args.seed)
steps = args.steps

# --- snippet start ---
import torch
from sj_common.data import MNIST5k, MNIST5kEvents, PairedStaticEvent
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from spikingjelly.activation_based.model.spiking_vgg import SpikingVGG
from torch import nn
from torch.utils.data import DataLoader

from sj_transfer import DomainTransferLoss, SlidingReplacement

# steps: training iterations of the whole run (the example's --steps); the sliding schedule's N
T = 8
# net: any multi-step SpikingJelly network that returns features [T, B, F]; here SpikingJelly's VGG builder
features = SpikingVGG.make_layers(
    [16, "M", 32, "M", 32, "M"], batch_norm=True, neuron=neuron.LIFNode,
    surrogate_function=surrogate.ATan(), detach_reset=True,
)  # fmt: skip
features[0] = layer.Conv2d(2, 16, kernel_size=3, padding=1)  # the inputs have 2 (ON/OFF) channels, not 3
net = nn.Sequential(features, layer.Flatten())  # [T, B, 2, 34, 34] -> [T, B, 32 * 4 * 4]
functional.set_step_mode(net, "m")
tap = [m for m in net.modules() if isinstance(m, neuron.BaseNode)][-1]  # the last LIF layer
tap.store_v_seq = True  # its membrane potential tap.v_seq [T, B, ...] is the domain loss's feature
# one classifier head for both domains (recommended: the static images then train the head tested on events)
head = layer.Linear(32 * 4 * 4, 10, step_mode="m")  # [T, B, F] -> [T, B, 10]
loss_fn = DomainTransferLoss(T=T)  # holds the learnable per-step coefficients c_t
params = [*net.parameters(), *head.parameters(), *loss_fn.parameters()]
opt = torch.optim.AdamW(params, lr=5e-3, weight_decay=0.01)  # everything that trains, the head included
pairs = PairedStaticEvent(MNIST5k("train"), MNIST5kEvents("train", T=T), T=T, train_ratio=0.1, size=34)
loader = DataLoader(pairs, batch_size=32, shuffle=True)  # (static [B, T, 2, H, W], event [B, T, 2, H, W], y)
sliding = SlidingReplacement(T=T)  # P = (i / steps)^3; T: it checks that inputs are [T, B, ...]
i, epoch = 0, 0  # the global iteration: it does not restart with each epoch
while i < steps:
    pairs.set_epoch(epoch)  # each epoch draws new static partners (a function of seed, epoch, index)
    epoch += 1
    for xs, xe, y in loader:
        xs, xe = xs.transpose(0, 1), xe.transpose(0, 1)  # [T, B, 2, H, W], as the net and sliding expect
        xs, _ = sliding(xs, xe, iteration=i, total=steps)  # per sample: static input <- its own event input
        functional.reset_net(net)
        os_ = head(net(xs))
        fs = tap.v_seq
        functional.reset_net(net)
        oe = head(net(xe))
        fe = tap.v_seq
        out = loss_fn(os_, oe, fs, fe, y)  # out.loss, out.cka [T], out.weights [T]
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        i += 1
        if i == steps:
            break

net.eval()  # at test time: event input through the same head
correct = 0
with torch.no_grad():
    for x, y in DataLoader(MNIST5kEvents("test", T=T), batch_size=200):
        functional.reset_net(net)
        correct += int((head(net(x.transpose(0, 1))).mean(0).argmax(1) == y).sum())
print(f"event test accuracy: {100 * correct / 1000:.1f} %")
# --- snippet end ---
