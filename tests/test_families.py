"""Every bottleneck family of timm (and torchvision) on the zoo's one block, key for key.

For each family the zoo registers ``<timm name>_scratch`` and, where timm has weights,
``<timm name>_timm_pretrained``. The proof, offline:

- the 50-deep (and 26-deep) member of every family: timm's model of the same name, built
  with ``pretrained=False``, saved as safetensors and loaded through the user's own path
  (``create_model(name, weights=FILE)``, strict), gives the same outputs in eval mode
  (max abs difference <= 1e-5, fp32, 1x3x64x64), and then trains (forward and backward);
- the deeper members (101 to 200 blocks) are too slow to initialise on these shared CPUs
  a dozen times over: they are compared on the meta device, state dict keys and shapes
  and parameter counts, against timm (and torchvision where it has the model);
- torchvision's ResNeXt-50 and Wide ResNet-50-2 give the same outputs too;
- every registered scratch model builds and runs a forward and a backward pass: the
  shallow members above for real, the deep ones on the meta device, the zoo's first models
  in tests/test_models.py; and every ``*_timm_pretrained`` twin measures (in the model index, which
  tests/test_model_index.py keeps equal to the builders) as its scratch model does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from timm.layers import BlurPool2d
from torch import nn

import registry
from zoo.blocks import BasicBlock, Bottleneck
from zoo.resnet import ResNet

SHALLOW = [
    "resnet26",
    "resnet26t",
    "resnet50c",
    "resnet50s",
    "resnet50d",
    "resnet50_gn",
    "resnext50_32x4d",
    "seresnet50",
    "seresnext50_32x4d",
    "ecaresnet50d",
    "resnetaa50d",
    "resnetblur50",
    "resnetrs50",
]
"""One member of every family, compared output for output."""

DEEP = [
    "resnet200",
    "resnet101d",
    "resnet152d",
    "resnet200d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "seresnet152d",
    "seresnext101d_32x8d",
    "ecaresnet101d",
    "resnetrs101",
]
"""The deeper (and the widest) members: keys, shapes and parameter counts on the meta device.

Wide ResNet-50-2 (69 M parameters) is compared output for output with torchvision's instead,
which is the same network as timm's: a 275 MB weights file costs more than it proves."""

FAMILIES = SHALLOW + DEEP
NO_TIMM_WEIGHTS = {"resnet200"}
TORCHVISION = {"resnext50_32x4d", "wide_resnet50_2", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2"}
KEPT_TAGS = {"resnet50": "a1_in1k", "resnet101": "a1h_in1k"}
"""Twins that kept the weights they had before timm's default changed: the zoo's choice, not timm's default."""


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These CPUs are shared: one thread per test is faster than oversubscribing them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomise_norms(model: nn.Module) -> nn.Module:
    """Give every norm layer non-trivial statistics and affine parameters, so that a swapped one shows."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 0.4 - 0.2)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) * 1.5 + 0.5)
    return model.eval()


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every state dict key with its shape."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", SHALLOW)
def test_outputs_equal_timms_through_a_weights_file(arch: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = randomise_norms(timm.create_model(arch, pretrained=False))
    path = tmp_path / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = registry.create_model(f"{arch}_timm_pretrained", num_classes=1000, weights=path).eval()
    assert type(model) is ResNet
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)
    assert expected.abs().max() > 1e-3  # the comparison is not of two zeros
    model.train()
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 64, 64)), torch.tensor([1, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", FAMILIES)
def test_keys_shapes_and_parameter_counts_equal_timms(arch: str) -> None:
    with torch.device("meta"):
        reference = timm.create_model(arch, pretrained=False)
        model = registry.create_model(f"{arch}_scratch", num_classes=1000)
    assert shapes(model) == shapes(reference)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    blocks = [b for stage in model.stages for b in stage]
    assert len(blocks) == sum(
        len(stage) for stage in (reference.layer1, reference.layer2, reference.layer3, reference.layer4)
    )
    assert all(type(b) in (Bottleneck, BasicBlock) for b in blocks)


@pytest.mark.parametrize("arch", ["resnext50_32x4d", "wide_resnet50_2"])
def test_outputs_equal_torchvisions(arch: str) -> None:
    torch.manual_seed(0)
    reference = randomise_norms(getattr(torchvision.models, arch)())
    model = registry.create_model(f"{arch}_scratch", num_classes=1000)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(TORCHVISION))
def test_keys_and_shapes_equal_torchvisions(arch: str) -> None:
    with torch.device("meta"):
        reference = getattr(torchvision.models, arch)()
        model = registry.create_model(f"{arch}_scratch", num_classes=1000)
    assert shapes(model) == shapes(reference)


def test_every_family_is_registered_scratch_and_pretrained() -> None:
    names = set(registry.list_models())
    assert {f"{arch}_scratch" for arch in FAMILIES} <= names
    with_weights = {arch for arch in FAMILIES if timm.list_pretrained(f"{arch}.*")}
    assert with_weights == set(FAMILIES) - NO_TIMM_WEIGHTS
    assert {f"{arch}_timm_pretrained" for arch in with_weights} <= names
    assert "resnet200_timm_pretrained" not in names


@pytest.mark.parametrize("name", registry.list_models("*_timm_pretrained"))
def test_twins_default_to_timms_default_tag(name: str) -> None:
    arch = name.removesuffix("_timm_pretrained")
    source = registry.get_spec(name).pretrained
    default = timm.models.get_pretrained_cfg(arch).tag
    assert source == f"timm:{arch}.{KEPT_TAGS.get(arch, default)}"


def test_block_settings_are_tags_the_registry_filters_on() -> None:
    assert registry.list_models("resnext*", pretrained=False) == [
        "resnext101_32x8d_scratch",
        "resnext101_64x4d_scratch",
        "resnext50_32x4d_scratch",
    ]
    assert set(registry.list_models(tags=["se", "scratch"])) == {
        "seresnet50_scratch",
        "seresnet152d_scratch",
        "seresnext50_32x4d_scratch",
        "seresnext101d_32x8d_scratch",
        "resnetrs50_scratch",
        "resnetrs101_scratch",
    }
    assert registry.get_spec("seresnext101d_32x8d_scratch").tags == (
        "scratch",
        "bottleneck",
        "groups-32",
        "width-per-group-8",
        "deep-stem",
        "avg-down",
        "se",
    )
    assert registry.get_spec("resnext50_32x4d_timm_pretrained").family == "resnext"


def test_unknown_tag_lists_the_architectures_tags() -> None:
    with pytest.raises(registry.WeightsError) as error:
        registry.create_model("resnext101_64x4d_timm_pretrained", timm_name="resnext101_64x4d.nope", pretrained=False)
    message = str(error.value)
    assert "'resnext101_64x4d.nope'" in message
    assert "resnext101_64x4d.c1_in1k, resnext101_64x4d.gluon_in1k, resnext101_64x4d.tv_in1k" in message
    assert "\n" not in message


def test_another_architectures_weights_name_the_first_mismatched_key(tmp_path: Path) -> None:
    with torch.device("meta"):
        other = registry.create_model("resnet50_scratch", num_classes=1000)
    path = tmp_path / "resnet50.safetensors"
    save_file({k: torch.zeros(v.shape) for k, v in other.state_dict().items()}, str(path))
    with pytest.raises(registry.WeightsError) as error:
        registry.create_model("resnext50_32x4d_timm_pretrained", weights=path)
    assert "layer1.0.conv1.weight" in str(error.value)
    assert "\n" not in str(error.value)


TRAINED_IN_TEST_MODELS = {
    "plain101_scratch",
    "plain50_scratch",
    "preresnet1001_scratch",  # tests/test_preresnet.py, on the meta device
    "preresnet164_scratch",  # tests/test_preresnet.py
    "plain_tiny_scratch",
    "resnet101_scratch",
    "resnet152_scratch",
    "resnet18_scratch",
    "resnet34_scratch",
    "resnet50_scratch",
    "resnet_tiny_scratch",
}
"""The zoo's first models, trained for real in tests/test_models.py (the deep ones marked slow), and the
pre-activation CIFAR ResNets of tests/test_preresnet.py."""


def test_every_scratch_model_trains_in_one_test_or_another() -> None:
    here = {f"{arch}_scratch" for arch in FAMILIES}
    assert set(registry.list_models(pretrained=False)) == here | TRAINED_IN_TEST_MODELS


@pytest.mark.parametrize("arch", DEEP)
def test_deep_members_build_and_train_on_the_meta_device(arch: str) -> None:
    with torch.device("meta"):
        model = registry.create_model(f"{arch}_scratch", num_classes=10)
        loss = model(torch.empty(2, 3, 64, 64)).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


@pytest.mark.parametrize("name", registry.list_models("*_timm_pretrained"))
def test_every_twin_is_its_scratch_architecture(name: str) -> None:
    twin = registry.model_info(name)
    scratch = registry.model_info(name.replace("_timm_pretrained", "_scratch"))
    assert (twin["num_params"], twin["gflops"], twin["family"]) == (
        scratch["num_params"],
        scratch["gflops"],
        scratch["family"],
    )
    assert set(scratch["tags"]) - {"scratch"} <= set(twin["tags"])


@pytest.mark.parametrize("arch", ["resnext50_32x4d", "resnet50d", "resnetblur50", "resnetrs50"])
def test_cifar_stem_for_every_family(arch: str) -> None:
    with torch.device("meta"):
        model = registry.create_model(f"{arch}_scratch", stem="cifar")
        assert model.forward_features(torch.empty(1, 3, 32, 32)).shape == (1, 2048, 4, 4)
    assert isinstance(model.maxpool, nn.Identity)


def test_drop_path_grows_linearly_with_depth() -> None:
    with torch.device("meta"):
        model = registry.create_model("resnet26_scratch", drop_path_rate=0.2)
    rates = [b.drop_path.drop_prob if b.drop_path is not None else 0.0 for s in model.stages for b in s]
    assert rates == pytest.approx([0.2 * i / 7 for i in range(8)])


@pytest.mark.parametrize(
    ("timm_name", "timm_args", "zoo_args"),
    [
        (
            "resnet10t",
            {},
            {
                "block": BasicBlock,
                "layers": (1, 1, 1, 1),
                "stem_width": 32,
                "stem_type": "deep_tiered",
                "avg_down": True,
            },
        ),
        (
            "resnet18",
            {"aa_layer": BlurPool2d, "block_args": {"attn_layer": "se"}},
            {"block": BasicBlock, "layers": (2, 2, 2, 2), "aa_layer": "blur", "attn_layer": "se"},
        ),
        (
            "resnet18",
            {"aa_layer": nn.AvgPool2d, "replace_stem_pool": True, "block_args": {"attn_layer": "eca"}},
            {
                "block": BasicBlock,
                "layers": (2, 2, 2, 2),
                "aa_layer": "avg",
                "replace_stem_pool": True,
                "attn_layer": "eca",
            },
        ),
        ("resnet26", {"block_reduce_first": 2}, {"block": Bottleneck, "layers": (2, 2, 2, 2), "block_reduce_first": 2}),
    ],
    ids=["basic-tiered-avg-down", "basic-blur-se", "basic-avg-rs-pool-eca", "bottleneck-reduce-first"],
)
def test_every_knob_matches_timms(timm_name: str, timm_args: dict, zoo_args: dict) -> None:
    """The knobs no registered family uses (BasicBlock's anti-aliasing and attention, reduce_first) match too."""
    torch.manual_seed(0)
    reference = randomise_norms(timm.create_model(timm_name, pretrained=False, **timm_args))
    model = ResNet(num_classes=1000, **zoo_args)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attn_layer": "cbam"}, "unknown attn_layer 'cbam'; use one of: se, eca or None"),
        ({"aa_layer": "max"}, "unknown aa_layer 'max'; use one of: avg, blur or None"),
        ({"norm_layer": "layernorm"}, "unknown norm_layer 'layernorm'; use one of: batchnorm, groupnorm"),
        ({"stem_type": "deeper"}, "unknown stem_type 'deeper'; use one of: '', 'deep', 'deep_tiered'"),
        ({"base_width": 32, "stem_width": 32}, "base_width (the first stage's width) cannot be combined"),
        ({"channels": (64, 128)}, "channels has 2 stages but layers has 4"),
        ({"cardinality": 32}, "BasicBlock takes no groups"),
        ({"drop_path_rate": 1.5}, "drop_path_rate and drop_rate must be in [0, 1)"),
    ],
)
def test_bad_knobs_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(registry.ModelArgumentError) as error, torch.device("meta"):
        ResNet(BasicBlock, (1, 1, 1, 1), **kwargs)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_family_refuses_an_argument_it_does_not_take() -> None:
    with pytest.raises(registry.ModelArgumentError) as error:
        registry.create_model("resnext50_32x4d_scratch", cardinality=64)
    assert (
        "does not take argument(s) 'cardinality'; it takes: num_classes, stem, zero_init_last, drop_path_rate"
        in str(error.value)
    )


def test_the_old_base_width_still_means_the_first_stages_width() -> None:
    with torch.device("meta"):
        old = ResNet(Bottleneck, (1, 1, 1, 1), base_width=8)
        new = ResNet(Bottleneck, (1, 1, 1, 1), stem_width=8, channels=(8, 16, 32, 64))
    assert shapes(old) == shapes(new)
    assert old.num_features == 256
