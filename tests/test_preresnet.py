"""The pre-activation CIFAR ResNets of He et al. 2016 ("Identity mappings in deep residual networks").

ResNet-164 and ResNet-1001 are the zoo's one `Bottleneck` with ``preact=True``: the same
convolutions in the order norm, ReLU, convolution. Shown here: the order (forward hooks),
that the convolutions are the post-activation block's, the paper's parameter counts,
a real forward and backward pass of ResNet-164 at 32x32 (ResNet-1001 on the meta device),
and the one-line error when pre- and post-activation weights are swapped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import registry
from registry.errors import ModelArgumentError, WeightsError
from registry.weights import load_state_dict_strict
from zoo.blocks import BasicBlock, Bottleneck
from zoo.resnet import ResNet

PREACT_ORDER = ["bn1", "relu", "downsample", "conv1", "bn2", "relu", "conv2", "bn3", "relu", "conv3"]
POSTACT_ORDER = ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3", "downsample", "relu"]


def call_order(block: nn.Module, x: torch.Tensor) -> list[str]:
    """The block's direct children in the order their forward passes end."""
    order: list[str] = []
    handles = [
        child.register_forward_hook(lambda *_, name=name: order.append(name)) for name, child in block.named_children()
    ]
    block(x)
    for handle in handles:
        handle.remove()
    return order


@pytest.mark.parametrize(("preact", "expected"), [(True, PREACT_ORDER), (False, POSTACT_ORDER)])
def test_the_block_runs_norm_relu_conv_when_pre_activated(preact: bool, expected: list[str]) -> None:
    block = Bottleneck(64, 32, stride=2, preact=preact)
    assert call_order(block, torch.randn(1, 64, 8, 8)) == expected


def test_pre_activation_reorders_the_same_convolutions() -> None:
    pre, post = Bottleneck(64, 32, stride=2, preact=True), Bottleneck(64, 32, stride=2)
    convs = {k: v.shape for k, v in post.state_dict().items() if "conv" in k or k == "downsample.0.weight"}
    assert convs == {k: v.shape for k, v in pre.state_dict().items() if "conv" in k or k.startswith("downsample")}
    # Each norm moves before its convolution and takes that convolution's input channels.
    assert (pre.bn1.num_features, pre.bn2.num_features, pre.bn3.num_features) == (64, 32, 32)
    assert (post.bn1.num_features, post.bn2.num_features, post.bn3.num_features) == (32, 32, 128)
    assert pre.downsample is not None
    assert len(pre.downsample) == 1


def test_a_pre_activated_identity_block_adds_without_a_relu() -> None:
    block = Bottleneck(128, 32, preact=True).eval()
    block.zero_init_last()  # zeroes conv3: the block starts as an identity
    assert not block.conv3.weight.any()
    x = torch.randn(2, 128, 4, 4)  # negative values survive: no ReLU after the sum
    assert torch.equal(block(x), x)


def test_preresnet164_is_the_papers_network() -> None:
    model = registry.create_model("preresnet164_scratch")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(1.7e6, rel=0.01)  # the paper's 1.7M
    assert [len(stage) for stage in model.stages] == [18, 18, 18]
    assert model.conv1.weight.shape == (16, 3, 3, 3)
    assert isinstance(model.bn1, nn.Identity)
    assert all(isinstance(block, Bottleneck) and block.preact for stage in model.stages for block in stage)
    assert isinstance(model.norm, nn.BatchNorm2d)
    assert model.norm.num_features == 256

    shapes: list[tuple[int, ...]] = []
    for stage in model.stages:
        stage.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    features = model.forward_features(x)
    assert shapes == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8)]
    assert features.min() >= 0  # the final norm and ReLU come before the pool

    nn.functional.cross_entropy(model.forward_head(features), y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.layer1[0].conv1.weight.grad.abs().sum() > 0


def test_preresnet1001_builds_and_trains_on_the_meta_device() -> None:
    with torch.device("meta"):
        model = registry.create_model("preresnet1001_scratch", num_classes=10)
        loss = model(torch.empty(2, 3, 32, 32)).logsumexp(1).sum()
    loss.backward()
    assert [len(stage) for stage in model.stages] == [111, 111, 111]
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(10.2e6, rel=0.02)  # the paper's 10.2M
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_registered_with_family_input_size_and_tags() -> None:
    assert registry.list_models(tags=["preact"]) == ["preresnet1001_scratch", "preresnet164_scratch"]
    for name in ("preresnet164_scratch", "preresnet1001_scratch"):
        spec = registry.get_spec(name)
        assert (spec.family, spec.input_size) == ("preresnet", (3, 32, 32))
        assert {"scratch", "bottleneck", "preact"} <= set(spec.tags)


def postact_twin() -> ResNet:
    """ResNet-164's layout in the post-activation order (no registered model: the paper's baseline)."""
    return ResNet(Bottleneck, (18, 18, 18), stem="cifar", stem_width=16, channels=(16, 32, 64))


def test_post_activation_weights_into_the_pre_activation_model_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "postact164.safetensors"
    with torch.device("meta"):
        post = postact_twin()
    save_file({k: torch.zeros(v.shape) for k, v in post.state_dict().items()}, str(path))
    with pytest.raises(WeightsError) as error:
        registry.create_model("preresnet164_scratch", weights=path)
    message = str(error.value)
    assert "shape mismatch at layer1.0.bn3.weight: (64,) in the weights, (16,) in the model" in message
    assert "\n" not in message


def test_pre_activation_weights_into_a_post_activation_model_are_one_line() -> None:
    with torch.device("meta"):
        pre = registry.create_model("preresnet164_scratch")
        post = postact_twin()
    with pytest.raises(WeightsError) as error:
        load_state_dict_strict(post, pre.state_dict(), "preact164.safetensors", "postact164")
    message = str(error.value)
    assert "shape mismatch at layer1.0.bn3.weight: (16,) in the weights, (64,) in the model" in message
    assert "\n" not in message


def test_a_basic_block_refuses_the_pre_activation_order() -> None:
    with pytest.raises(ModelArgumentError, match="BasicBlock has no pre-activation order; use Bottleneck"):
        ResNet(BasicBlock, (1, 1), preact=True)
