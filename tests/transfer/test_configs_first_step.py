"""The first training step of EVERY packaged sj-transfer config, at tiny size (a project rule): the
recipe's model and step (resize, crop and flip/rotate augmentation, sliding replacement, two-branch loss)
with B=2, T=2 and 16x16 frames (the smallest the paper VGG's four pools take), on random frames of the
config's layout: ``(static, event, y)`` for the transfer configs, ``(event, y)`` for the baselines."""

import pytest
import torch
from sj_common.config import available_configs
from sj_common.engine import StepContext
from sj_common.recipe import Data
from sj_transfer.recipe import RECIPE

from tests.tiny import RandomItems

B, T, SIZE = 2, 2, 16


@pytest.mark.parametrize("name", available_configs("sj_transfer"))
def test_first_training_step_of_every_config(name, one_thread):
    cfg = RECIPE.config(name, {"data.T": T, "data.size": SIZE})
    frames = (T, 2, 2 * SIZE, 2 * SIZE)  # larger than data.size: the step's resize runs too
    items = RandomItems([frames] * (1 if cfg.method.baseline else 2), B)
    data = Data(items, None, None, num_classes=cfg.data.num_classes or 10, sequence_input=True)
    torch.manual_seed(0)
    model = RECIPE.build_model(cfg, data)
    model.train()
    step = RECIPE.build_step(cfg, data)
    out = step(model, items.batch(), StepContext(0, 0, 1, 1, torch.device("cpu"), True, cfg.train))
    assert out.logits.shape == (B, data.num_classes) and torch.isfinite(out.loss), name
    if not cfg.method.baseline:
        assert {"loss_static", "loss_event", "loss_domain", "cka"} <= set(out.logs), name
    out.loss.backward()
    grads = [p.grad for p in model.net.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads), name
