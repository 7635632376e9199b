"""The zoo's models as backbones, and timm's model API on them (issue #29, parts 0 and 1).

What timm's and torchvision's tools ask of a model, checked on one shallow member of every
family at 64x64 (the deep members on the meta device):

- modules are registered in the order they run: torchvision's ``IntermediateLayerGetter``
  (and so ``BackboneWithFPN``) returns the model's own maps, with trained (randomised) norms;
- ``torch.jit.script`` compiles every family, eager and after an FX trace;
- ``features_only=True`` gives the same maps as timm's ``features_only`` model of the same
  name with the same weights (fp32, eval, max difference 1e-5), and the same ``feature_info``;
- ``forward_intermediates``, ``create_feature_extractor``, gradient checkpointing,
  ``group_matcher``, ``pretrained_cfg`` (timm's ``resolve_data_config``), ``head_hidden_size``,
  ``reset_classifier(n, global_pool)`` and the builders' timm keywords;
- a backbone under a small FPN segmentation head trains a step.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from test_families import DEEP, SHALLOW, randomise_norms
from timm.data import resolve_data_config
from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.ops import FeaturePyramidNetwork

import registry
from zoo.resnet import ResNet

ZOO_ONLY = ["preresnet164", "resnet_tiny"]
"""Families timm has no model of: checked against the model itself, not timm."""

EVERY_FAMILY = SHALLOW + ZOO_ONLY
X = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
"""For the comparisons with timm: at 64x64 the last map is still 2x2."""
SMALL = X[..., :32, :32]
"""For the checks of the model against itself: a quarter of the work."""


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These CPUs are shared: one thread per test is faster than oversubscribing them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def zoo_model(arch: str, **kwargs: object) -> nn.Module:
    """The scratch model of `arch` (1000 classes, as timm's), with randomised norms, in eval mode."""
    torch.manual_seed(0)
    return randomise_norms(registry.create_model(f"{arch}_scratch", num_classes=1000, **kwargs))


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_intermediate_layer_getter_gives_the_models_own_maps(arch: str) -> None:
    from torchvision.models._utils import IntermediateLayerGetter

    model = zoo_model(arch)
    modules = [info["module"] for info in model.feature_info]
    getter = IntermediateLayerGetter(model, return_layers={m: m for m in modules}).eval()
    with torch.no_grad():
        expected = model.forward_intermediates(SMALL, intermediates_only=True)
        got = getter(SMALL)
    assert list(got) == modules
    for name, want in zip(modules, expected, strict=True):
        torch.testing.assert_close(got[name], want, rtol=0, atol=0, msg=f"{arch}: {name}")


@pytest.mark.parametrize("arch", ["resnetaa50d", "resnetrs50", "preresnet164"])
def test_backbone_with_fpn_runs_on_the_models_maps(arch: str) -> None:
    model = zoo_model(arch)
    stages = model.feature_info[1:]
    fpn = BackboneWithFPN(
        model,
        return_layers={info["module"]: str(i) for i, info in enumerate(stages)},
        in_channels_list=[info["num_chs"] for info in stages],
        out_channels=16,
    ).eval()
    with torch.no_grad():
        body = fpn.body(SMALL)
        expected = model.forward_intermediates(SMALL, indices=list(range(1, len(model.feature_info))))[1]
        for got, want in zip(body.values(), expected, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert all(m.shape[1] == 16 for m in fpn(SMALL).values())


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_torchscript_compiles_every_family(arch: str) -> None:
    model = zoo_model(arch)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(SMALL), model(SMALL), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", ["resnet26t", "resnetrs50", "preresnet164"])
def test_torchscript_compiles_after_an_fx_trace(arch: str) -> None:
    model = zoo_model(arch)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(traced)(SMALL), model(SMALL), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", SHALLOW)
def test_feature_maps_and_feature_info_equal_timms(arch: str) -> None:
    torch.manual_seed(0)
    reference = randomise_norms(timm.create_model(arch, pretrained=False, features_only=True))
    model = registry.create_model(f"{arch}_scratch", num_classes=1000, features_only=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    assert model.feature_info.channels() == reference.feature_info.channels()
    assert model.feature_info.reduction() == reference.feature_info.reduction()
    assert model.feature_info.module_name() == reference.feature_info.module_name()
    with torch.no_grad():
        got, expected = model(X), reference(X)
    assert len(got) == len(expected) == 5
    for mine, theirs in zip(got, expected, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)
    assert expected[-1].abs().max() > 1e-3  # the comparison is not of two zeros


@pytest.mark.parametrize(("arch", "output_stride"), [(a, 8 if i % 2 else 16) for i, a in enumerate(SHALLOW)])
def test_dilated_feature_maps_equal_timms(arch: str, output_stride: int) -> None:
    torch.manual_seed(0)
    reference = timm.create_model(arch, pretrained=False, features_only=True, output_stride=output_stride)
    reference = randomise_norms(reference)
    model = registry.create_model(f"{arch}_scratch", num_classes=1000, features_only=True, output_stride=output_stride)
    model.load_state_dict(reference.state_dict(), strict=True)
    assert model.feature_info.get_dicts() == reference.feature_info.get_dicts()
    with torch.no_grad():
        for mine, theirs in zip(model.eval()(X), reference(X), strict=True):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)
    assert model.feature_info.reduction()[-1] == output_stride


@pytest.mark.parametrize("arch", DEEP)
def test_deep_members_feature_info_equals_timms_on_the_meta_device(arch: str) -> None:
    with torch.device("meta"):
        reference = timm.create_model(arch, pretrained=False, features_only=True, out_indices=(1, 4))
        model = registry.create_model(f"{arch}_scratch", num_classes=1000, features_only=True, out_indices=(1, 4))
        assert model.feature_info.get_dicts() == reference.feature_info.get_dicts()
        assert [m.shape for m in model(torch.empty(1, 3, 64, 64))] == [m.shape for m in reference(X.to("meta"))]


def test_forward_intermediates_equal_timms() -> None:
    torch.manual_seed(0)
    model = registry.create_model("resnet50d_scratch", num_classes=1000)
    reference = randomise_norms(timm.create_model("resnet50d", pretrained=False))
    model.load_state_dict(reference.state_dict())
    model.eval()
    for indices in (None, 2, [0, -1]):
        with torch.no_grad():
            mine = model.forward_intermediates(X, indices=indices)
            theirs = reference.forward_intermediates(X, indices=indices)
        torch.testing.assert_close(mine[0], theirs[0], rtol=0, atol=1e-5)
        for a, b in zip(mine[1], theirs[1], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_create_feature_extractor_works_on_every_family(arch: str) -> None:
    model = zoo_model(arch)
    nodes = {info["module"]: info["module"] for info in model.feature_info}
    extractor = create_feature_extractor(model, return_nodes=nodes)
    with torch.no_grad():
        got = extractor(SMALL)
        expected = model.forward_intermediates(SMALL, intermediates_only=True)
    for name, want in zip(nodes, expected, strict=True):
        torch.testing.assert_close(got[name], want, rtol=0, atol=1e-5)


def test_an_out_index_the_model_lacks_lists_those_it_has() -> None:
    with pytest.raises(registry.ModelArgumentError) as error:
        registry.create_model("preresnet164_scratch", features_only=True, out_indices=(1, 4))
    message = str(error.value)
    assert "[1, 4]" in message
    assert "it has [0, 1, 2, 3]" in message
    assert "\n" not in message
    with pytest.raises(registry.ModelArgumentError, match="give features_only=True"):
        registry.create_model("resnet_tiny_scratch", out_indices=(1,))


def test_pretrained_cfg_gives_timms_data_config_the_true_input() -> None:
    cifar = registry.create_model("resnet_tiny_scratch")
    config = resolve_data_config(model=cifar)
    assert config["input_size"] == (3, 32, 32)
    assert config["crop_pct"] == 1.0
    assert cifar.pretrained_cfg["pool_size"] == (4, 4)
    assert cifar.default_cfg is cifar.pretrained_cfg
    imagenet = registry.create_model("resnet50d_scratch", in_chans=1)
    assert resolve_data_config(model=imagenet)["input_size"] == (1, 224, 224)
    assert imagenet.pretrained_cfg["first_conv"] == "conv1.0"
    assert imagenet.pretrained_cfg["classifier"] == "fc"
    assert imagenet(torch.randn(1, 1, 64, 64)).shape == (1, 10)
    assert registry.model_info("resnet_tiny_scratch")["pretrained_cfg"] == {}  # a card's cfg is the weights'


def test_head_hidden_size_reset_classifier_and_global_pool() -> None:
    model = registry.create_model("resnet_tiny_scratch", num_classes=3, global_pool="max")
    assert model.head_hidden_size == model.num_features == 256
    x = torch.randn(2, 3, 32, 32)
    features = model.forward_features(x)
    torch.testing.assert_close(model.forward_head(features, pre_logits=True), features.amax((2, 3)))
    model.reset_classifier(5, "avg")
    assert model(x).shape == (2, 5)
    assert model.global_pool.pool_type == "avg"
    model.reset_classifier(0, "")
    assert model(x).shape == features.shape
    with pytest.raises(registry.ModelArgumentError, match="global_pool=''"):
        model.reset_classifier(4, "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pretrained": True}, "has no weights; use its *_timm_pretrained twin"),
        ({"output_stride": 16}, "output_stride must be one of [1, 2, 4, 8] for this model, got 16"),
        ({"global_pool": "median"}, "unknown global_pool 'median'"),
        ({"cardinality": 2}, "it takes: num_classes, stem, residual, zero_init_last, pretrained, in_chans"),
    ],
)
def test_builders_take_timms_keywords(kwargs: dict, message: str) -> None:
    assert registry.create_model("resnet_tiny_scratch", pretrained=False, output_stride=8) is not None
    with pytest.raises(registry.ModelArgumentError) as error:
        registry.create_model("resnet_tiny_scratch", **kwargs)
    assert message in str(error.value)


def test_gradient_checkpointing_gives_the_same_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    model = registry.create_model("resnet_tiny_scratch")
    x = torch.randn(2, 3, 32, 32)
    model(x).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing()
    assert model.grad_checkpointing
    model(x).sum().backward()
    for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_group_matcher_groups_as_timms() -> None:
    from timm.models import group_parameters

    with torch.device("meta"):
        model = registry.create_model("resnet26_scratch", num_classes=1000)
        reference = timm.create_model("resnet26", pretrained=False)
    for coarse in (True, False):
        assert model.group_matcher(coarse) == reference.group_matcher(coarse)
        assert group_parameters(model, model.group_matcher(coarse)) == group_parameters(
            reference, reference.group_matcher(coarse)
        )
    with torch.device("meta"):
        preact = registry.create_model("preresnet164_scratch")
    groups = group_parameters(preact, preact.group_matcher(coarse=True))
    assert groups[0] == ["conv1.weight"]
    assert "norm.weight" in groups[3]


def test_a_pretrained_twin_keeps_its_weights_as_a_backbone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = randomise_norms(timm.create_model("resnet26", pretrained=False))
    path = tmp_path / "resnet26.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    backbone = registry.create_model("resnet26_timm_pretrained", weights=path, features_only=True, out_indices=(2, 4))
    timm_backbone = timm.create_model("resnet26", pretrained=False, features_only=True, out_indices=(2, 4))
    timm_backbone.load_state_dict(reference.state_dict(), strict=False)
    with torch.no_grad():
        for got, want in zip(backbone.eval()(X), timm_backbone.eval()(X), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


class TinySegmenter(nn.Module):
    """A backbone's maps into a feature pyramid and a 1x1 classifier per pixel, upsampled to the input."""

    def __init__(self, backbone: nn.Module, classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fpn = FeaturePyramidNetwork(backbone.feature_info.channels(), out_channels=16)
        self.classify = nn.Conv2d(16, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits ``(N, classes, H, W)``."""
        maps = self.fpn({str(i): m for i, m in enumerate(self.backbone(x))})
        finest = next(iter(maps.values()))
        return nn.functional.interpolate(self.classify(finest), size=x.shape[-2:], mode="bilinear")


def test_a_backbone_under_a_small_segmentation_head_trains_a_step() -> None:
    torch.manual_seed(0)
    model = TinySegmenter(registry.create_model("resnet_tiny_scratch", features_only=True, out_indices=(1, 2, 3)), 4)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target = torch.randn(2, 3, 32, 32), torch.randint(0, 4, (2, 32, 32))
    before = model.backbone.layer1[0].conv1.weight.detach().clone()
    loss = nn.functional.cross_entropy(model(x), target)
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    assert not torch.equal(model.backbone.layer1[0].conv1.weight, before)
    assert isinstance(registry.create_model("resnet_tiny_scratch"), ResNet)
