"""timm's weights inside the zoo's architecture, from a file or timm's download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

import registry
from registry.errors import ModelArgumentError, WeightsError

PAIRS = [("resnet50", "resnet50_timm_pretrained"), ("resnet101", "resnet101_timm_pretrained")]


def random_timm_model(arch: str, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised timm model with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module", params=PAIRS, ids=[p[0] for p in PAIRS])
def timm_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    arch, zoo_name = request.param
    model = random_timm_model(arch)
    path = tmp_path_factory.mktemp(arch) / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return arch, zoo_name, model, path


def test_outputs_equal_timms(timm_file) -> None:
    _, zoo_name, reference, path = timm_file
    model = registry.create_model(zoo_name, num_classes=1000, weights=str(path)).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-5)
    assert type(model).__module__ == "zoo.resnet"


def test_new_head_keeps_every_backbone_tensor(timm_file) -> None:
    _, zoo_name, reference, path = timm_file
    model = registry.create_model(zoo_name, num_classes=10, weights=path)
    expected = reference.state_dict()
    ours = model.state_dict()
    backbone = [k for k in ours if not k.startswith("fc.")]
    assert len(backbone) == len([k for k in expected if not k.startswith("fc.")])
    assert all(torch.equal(ours[k], expected[k]) for k in backbone)
    assert model.fc.out_features == 10
    assert model.pretrained_cfg["weights"] == str(path)


def test_pth_file_loads(tmp_path: Path) -> None:
    reference = random_timm_model("resnet50", seed=3)
    path = tmp_path / "weights.pth"
    torch.save(reference.state_dict(), path)
    model = registry.create_model("resnet50_timm_pretrained", num_classes=1000, weights=path)
    assert torch.equal(
        model.state_dict()["layer4.2.bn3.running_var"], reference.state_dict()["layer4.2.bn3.running_var"]
    )


@pytest.mark.parametrize(
    ("zoo_name", "hub_id"),
    [
        ("resnet50_timm_pretrained", "timm/resnet50.a1_in1k"),
        ("resnet101_timm_pretrained", "timm/resnet101.a1h_in1k"),
    ],
)
def test_download_asks_timm_for_the_right_weights(monkeypatch: pytest.MonkeyPatch, zoo_name: str, hub_id: str) -> None:
    from timm.models import _builder

    asked = []
    arch = hub_id.split("/")[1].split(".")[0]
    weights = random_timm_model(arch).state_dict()

    def fake_download(model_id, *args, **kwargs):
        asked.append(model_id)
        return weights

    monkeypatch.setattr(_builder, "load_state_dict_from_hf", fake_download)
    model = registry.create_model(zoo_name, num_classes=10)
    assert asked == [hub_id]
    assert torch.equal(model.conv1.weight, weights["conv1.weight"])
    cfg = model.pretrained_cfg
    assert cfg["weights"] == "download"
    assert cfg["tag"] == hub_id.split("/")[1]
    assert cfg["mean"] == (0.485, 0.456, 0.406)
    assert cfg["input_size"] == (3, 224, 224)
    assert cfg["interpolation"] == "bicubic"


def test_failed_download_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from timm.models import _builder

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(_builder, "load_state_dict_from_hf", offline)
    with pytest.raises(
        WeightsError, match=r"could not download timm weights 'resnet50.a1_in1k' .*weights=PATH"
    ) as error:
        registry.create_model("resnet50_timm_pretrained")
    assert "\n" not in str(error.value)


def test_downloaded_weights_that_do_not_fit_are_not_called_a_failed_download(monkeypatch: pytest.MonkeyPatch) -> None:
    from timm.models import _builder

    wrong = random_timm_model("resnet101").state_dict()  # fetched fine, but for another depth

    monkeypatch.setattr(_builder, "load_state_dict_from_hf", lambda *args, **kwargs: wrong)
    with pytest.raises(
        WeightsError,
        match=r"weights from 'timm:resnet50.a1_in1k' do not fit model "
        r"'resnet50_timm_pretrained': .*unexpected keys",
    ) as error:
        registry.create_model("resnet50_timm_pretrained")
    assert "download" not in str(error.value)


def test_metadata_records_what_the_weights_expect() -> None:
    cfg = registry.model_info("resnet50_timm_pretrained")["pretrained_cfg"]
    assert cfg["mean"] == (0.485, 0.456, 0.406)
    assert cfg["std"] == (0.229, 0.224, 0.225)
    assert cfg["input_size"] == (3, 224, 224)
    assert cfg["interpolation"] == "bicubic"
    assert registry.get_spec("resnet50_timm_pretrained").pretrained == "timm:resnet50.a1_in1k"


def test_cifar_stem_is_refused() -> None:
    with pytest.raises(ModelArgumentError, match=r"takes only stem='imagenet'.*use a \*_scratch model"):
        registry.create_model("resnet50_timm_pretrained", stem="cifar", pretrained=False)


def test_missing_weights_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsError, match="does not exist; pass weights=PATH"):
        registry.create_model("resnet50_timm_pretrained", weights=missing)
    with pytest.raises(WeightsError, match="does not exist"):
        registry.create_model("resnet_tiny_scratch", weights=str(missing))


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _Payload.marker = marker
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _Payload()}, path)
    with pytest.raises(WeightsError, match=r"refused to load .*pickled Python objects"):
        registry.create_model("resnet_tiny_scratch", weights=path)
    assert not marker.exists()


def test_scratch_model_loads_its_own_weights(tmp_path: Path) -> None:
    source = registry.create_model("resnet_tiny_scratch", num_classes=4)
    path = tmp_path / "tiny.safetensors"
    save_file(source.state_dict(), str(path))
    loaded = registry.create_model("resnet_tiny_scratch", num_classes=4, weights=path)
    assert all(
        torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    with pytest.raises(WeightsError, match=r"do not fit model 'resnet_tiny_scratch': shape mismatch at fc\.weight"):
        registry.create_model("resnet_tiny_scratch", num_classes=10, weights=path)
