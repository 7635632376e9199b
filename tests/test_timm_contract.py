"""What timm's and torchvision's model tests ask of a model, asked of one zoo model per family.

timm's wheel ships no tests, and its ``tests/test_models.py`` is not vendored here: these
are the zoo's own checks of the same contract, written from what that file asks (as of
timm 1.0), on one shallow model of every family. Where the zoo's answer differs, the test
says so:

- ``test_model_default_cfgs``: ``forward_features`` gives a map of ``pool_size`` at the
  cfg's ``input_size``; ``reset_classifier(0)`` leaves pooled ``num_features``;
  ``reset_classifier(0, "")`` leaves the map; ``classifier`` and ``first_conv`` name weights.
  Run with the ``cifar`` stem (each family's true 32x32 size, cheap) and one ``imagenet``
  stem at 224x224.
- ``test_model_backward``: 42 classes, every parameter gets a gradient.
- ``test_model_forward_torchscript`` and torchvision's ``_check_jit_scriptable`` /
  ``_check_fx_compatible``: in tests/test_backbones.py.
- ``test_model_forward_features``: at least four levels, channels as ``feature_info`` says.
- ``test_model_forward_intermediates``: the maps' channels and reductions are
  ``feature_info``'s, and the final features equal ``forward_features``.
- ``test_model_load_pretrained`` with ``in_chans=1``: exception: the zoo's twins take no
  ``in_chans`` (timm adapts the first convolution's weights; the zoo does not yet), and
  downloads are not run offline; a scratch model takes ``in_chans=1``.
- torchvision's backbone tests (``get_graph_node_names``, ``create_feature_extractor`` in
  train and eval mode): here and in tests/test_backbones.py.
- ``output_stride`` 8 and 16 (dilated stages): tests/test_backbones.py, equal to timm's.
"""

from collections.abc import Iterator

import pytest
import torch
from test_backbones import EVERY_FAMILY
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

import registry


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These CPUs are shared: one thread per test is faster than oversubscribing them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_default_cfg(model: torch.nn.Module) -> None:
    """Timm's ``test_model_default_cfgs``: the cfg's sizes and names are the model's."""
    model.eval()
    cfg = model.default_cfg
    keys = model.state_dict().keys()
    assert f"{cfg['classifier']}.weight" in keys
    assert f"{cfg['first_conv']}.weight" in keys
    x = torch.randn(1, *cfg["input_size"])
    with torch.no_grad():
        assert tuple(model.forward_features(x).shape[-2:]) == tuple(cfg["pool_size"])
        model.reset_classifier(0)
        pooled = model(x)
        assert pooled.shape == (1, model.num_features)
        model.reset_classifier(0, "")
        assert tuple(model(x).shape[-2:]) == tuple(cfg["pool_size"])


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_default_cfg_at_the_true_input_size(arch: str) -> None:
    check_default_cfg(registry.create_model(f"{arch}_scratch", stem="cifar"))


def test_default_cfg_of_an_imagenet_stem_at_224() -> None:
    model = registry.create_model("resnet_tiny_scratch", stem="imagenet")
    assert model.default_cfg["input_size"] == (3, 224, 224)
    assert model.default_cfg["pool_size"] == (7, 7)
    check_default_cfg(model)


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_backward_reaches_every_parameter(arch: str) -> None:
    model = registry.create_model(f"{arch}_scratch", num_classes=42, stem="cifar").train()
    outputs = model(torch.randn(2, 3, 16, 16))
    outputs.mean().backward()
    assert outputs.shape == (2, 42)
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert not torch.isnan(outputs).any()


@pytest.mark.parametrize("arch", EVERY_FAMILY)
def test_forward_features_and_intermediates_follow_feature_info(arch: str) -> None:
    backbone = registry.create_model(f"{arch}_scratch", stem="cifar", features_only=True).eval()
    channels = backbone.feature_info.channels()
    assert len(channels) >= 4
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        maps = backbone(x)
    assert [m.shape[1] for m in maps] == channels
    model = registry.create_model(f"{arch}_scratch", stem="cifar").eval()
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
    assert [m.shape[1] for m in intermediates] == [i["num_chs"] for i in model.feature_info]
    assert [16 // m.shape[-1] for m in intermediates] == [i["reduction"] for i in model.feature_info]


def test_in_chans_on_a_scratch_model_and_its_exceptions() -> None:
    model = registry.create_model("resnet26_scratch", in_chans=1, num_classes=5).eval()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 5)
    with pytest.raises(registry.ModelArgumentError, match="in_chans"):
        registry.create_model("resnet26_timm_pretrained", pretrained=False, in_chans=1)
    dilated = registry.create_model("resnet26_scratch", output_stride=16).eval()
    with torch.no_grad():
        assert dilated.forward_features(torch.randn(1, 3, 64, 64)).shape[-1] == 4
    with pytest.raises(registry.ModelArgumentError, match=r"output_stride must be one of \[4, 8, 16, 32\]"):
        registry.create_model("resnet26_scratch", output_stride=64)


def test_torchvisions_feature_extraction_in_train_and_eval_mode() -> None:
    model = registry.create_model("resnetrs50_scratch", stem="cifar")
    train_nodes, eval_nodes = get_graph_node_names(model)
    assert train_nodes == eval_nodes
    for name in ("act1", "layer1", "layer4"):
        assert any(node.startswith(name) for node in train_nodes)
    extractor = create_feature_extractor(
        model, train_return_nodes={"layer2": "c3"}, eval_return_nodes={"layer2": "c3", "layer4": "c5"}
    )
    x = torch.randn(2, 3, 16, 16)
    assert list(extractor.train()(x)) == ["c3"]
    with torch.no_grad():
        assert list(extractor.eval()(x)) == ["c3", "c5"]
