"""Issue 24 (calib items): eval mode, firing rates of calibrated layers, shared activations, sync-free path."""

import pytest
import torch
from sj_calib.models import small_vgg
from torch import nn

from sj_calib import calibrate, convert


def _bn_net():
    torch.manual_seed(0)
    model = small_vgg(width=4).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.compat
def test_converted_nets_are_in_eval_mode_and_train_keeps_the_body_in_eval():
    model = _bn_net()
    x = torch.rand(3, 1, 28, 28)
    plain = convert(model, T=2)
    assert not plain.training
    cos = calibrate(plain, rho=2)
    from_train_mode = calibrate(convert(model, T=2).train(), rho=2)
    for net in (plain, cos, from_train_mode):
        assert not net.training and not any(m.training for m in net.body.modules())
        with torch.no_grad():
            ref = net(x)
            bns = [m for m in net.body.modules() if isinstance(m, nn.BatchNorm2d)]
            stats = [m.running_mean.clone() for m in bns]
            net.train()  # a user's habit: the body must not switch BN to batch statistics over T*B
            assert net.training and not any(m.training for m in net.body.modules())
            assert torch.equal(net(x), ref)
            assert all(torch.equal(m.running_mean, s) for m, s in zip(bns, stats))
            assert net.eval() is net and not net.training
    with pytest.raises(ValueError, match="mode: expected a bool"):
        plain.train("yes")
