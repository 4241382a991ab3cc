"""Two drop-in routes of sj_calib on a small BatchNorm CNN (MNIST-5k, 2 epochs), as a new user takes them.

1. ``init_threshold``: the QCFS ANN trained with lambda starting at 8.0 (the reference's value) and at 2.0;
   each converted (``convert``) and calibrated (``calibrate(rho=4)``) at T = 1, 2, 4, 8, with the check
   ``convert(example_input=...)`` makes (top-1 agreement of the QCFS ANN with its float twin).
2. SpikingJelly 2.x's own converter: the same CNN trained with ReLU, converted by
   ``ann2snn.Converter(RateCodingRecipe(...))`` and run as SpikingJelly runs it (its IF neurons start at
   v = 0), against ``calibrate(that_snn, rho=0)`` (v0 = theta/2 alone) and ``calibrate(that_snn, rho=4)``.

Writes ``docs/calib_dropin/results.json`` (the README's numbers) and prints a table. One seed, CPU, one
thread: a few minutes on an idle core.

    python benchmarks/calib_dropin.py [--epochs 2] [--out docs/calib_dropin]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from sj_common.threads import apply_thread_policy  # no torch import: call it before importing torch

TS = (1, 2, 4, 8)
TS_SJ = (1, 2, 4, 8, 16, 32)  # SpikingJelly's rate-coded route needs more steps


def cnn(act):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        act(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        act(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def train(model, data, epochs, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


def accuracy(fn, test):
    import torch

    xs, ys = test
    with torch.no_grad():
        return round(100.0 * float((fn(xs).argmax(-1) == ys).float().mean()), 2)


def snn_accuracy(net, test, T):
    """Accuracy of a :class:`sj_calib.SpikingNet` on a static test batch at ``T`` (mean output over time)."""
    return accuracy(lambda x: net(x, T=T).mean(0), test)


def sj_run(net, x, T):
    """SpikingJelly's converted net as SpikingJelly runs it: single-step, T calls, mean output."""
    import torch
    from spikingjelly.activation_based import functional

    functional.reset_net(net)
    out = torch.stack([net(x) for _ in range(T)]).cumsum(0)
    functional.reset_net(net)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/calib_dropin")
    args = p.parse_args(argv)
    apply_thread_policy(1)

    import torch
    from sj_common.data import MNIST5k
    from spikingjelly.activation_based import ann2snn
    from torch import nn

    from sj_calib import QCFS, ConversionWarning, calibrate, convert

    train_set, test_set = MNIST5k("train", seed=0), MNIST5k("test", seed=0)
    test = (torch.stack([x for x, _ in test_set]), torch.tensor([y for _, y in test_set]))
    probe = torch.stack([train_set[i][0] for i in range(256)])  # the example_input of the check
    res = {"setup": {"epochs": args.epochs, "seed": args.seed, "test_images": len(test_set), "T": list(TS)}}

    for init in (8.0, 2.0):
        torch.manual_seed(args.seed)
        ann = train(cnn(lambda init=init: QCFS(L=4, init_threshold=init)), train_set, args.epochs, args.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plain = convert(ann, example_input=probe)
        cos = calibrate(plain, rho=4)
        res[f"init_threshold={init}"] = {
            "ann": accuracy(ann, test),
            "thresholds": [
                round(float(m.threshold.detach()), 3) for m in ann.modules() if isinstance(m, QCFS)
            ],
            "agreement_with_float_twin": plain.conversion_check["agreement"],
            "warned": any(issubclass(w.category, ConversionWarning) for w in caught),
            "snn": [snn_accuracy(plain, test, T) for T in TS],
            "snn_rho4": [snn_accuracy(cos, test, T) for T in TS],
        }

    torch.manual_seed(args.seed)
    relu = train(cnn(nn.ReLU), train_set, args.epochs, args.seed)
    calib_batches = [(probe[i : i + 64], torch.zeros(64, dtype=torch.long)) for i in range(0, 256, 64)]
    sj = ann2snn.Converter(ann2snn.RateCodingRecipe(calib_batches, mode="Max")).convert(relu).eval()
    half, cos = calibrate(sj, rho=0), calibrate(sj, rho=4)
    res["spikingjelly_converter"] = {
        "recipe": "RateCodingRecipe(mode='Max'), 256 training images",
        "ann": accuracy(relu, test),
        "T": list(TS_SJ),
        "spikingjelly": [accuracy(lambda x, T=T: sj_run(sj, x, T)[-1], test) for T in TS_SJ],
        "calibrate_rho0": [snn_accuracy(half, test, T) for T in TS_SJ],
        "calibrate_rho4": [snn_accuracy(cos, test, T) for T in TS_SJ],
    }

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
