"""The first steps of EVERY packaged sj-calib config, at tiny size (a project rule): one QCFS training step
(B=2, the recipe's model and step) and the converted, calibrated SNN's forward at T=2 with the config's
rho, shift, saturation and iterations. Input 32x32 (28x28 for MNIST), random data of the config's layout."""

import pytest
import torch
from sj_calib.recipe import RECIPE
from sj_common.config import available_configs
from sj_common.engine import StepContext, classification_step
from sj_common.recipe import Data

from sj_calib import convert
from tests.tiny import RandomItems

B, T = 2, 2


@pytest.mark.parametrize("name", available_configs("sj_calib"))
def test_first_steps_of_every_config(name, release_memory, one_thread):
    cfg = RECIPE.config(name)
    RECIPE.check(cfg)
    channels, size = cfg.model.kwargs.get("in_channels", 3), 28 if cfg.data.name == "mnist5k" else 32
    items = RandomItems([(channels, size, size)], B)
    data = Data(items, None, None, num_classes=cfg.model.kwargs.get("num_classes", 10))
    torch.manual_seed(0)
    ann = RECIPE.build_model(cfg, data)
    ann.train()
    step = RECIPE.build_step(cfg, data) or classification_step(False)
    x, y = items.batch()
    out = step(ann, (x, y), StepContext(0, 0, 1, 1, torch.device("cpu"), True, cfg.train))
    assert out.logits.shape == (B, data.num_classes) and torch.isfinite(out.loss), name
    out.loss.backward()
    assert all(p.grad is not None for p in ann.parameters() if p.requires_grad), name

    ann.zero_grad(set_to_none=True)  # memory: ImageNet VGG-16 holds 138M parameters
    c = cfg.calib
    opts = dict(shift=c.shift, saturate=c.saturate, iterations=c.iterations)
    snn = convert(ann, fold_bn=c.fold_bn, rho=c.rho, **opts)  # = calibrate(convert(ann), rho, ...), one copy
    with torch.no_grad():
        per_step = snn(x, T=T)  # a static batch: the pre-simulation repeats it for rho steps
    assert per_step.shape == (T, B, data.num_classes) and torch.isfinite(per_step).all(), name
