"""The registry: registration, lookup, filters, errors, and entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import registry
from registry import core


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch):
    """Let a test register models and rediscover plugins, then restore the registry."""
    registry.discover_plugins()
    monkeypatch.setattr(core, "_models", dict(core._models))
    return core


def _tiny_builder(num_classes: int = 10):
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, num_classes))


def test_register_create_and_info(clean_registry) -> None:
    registry.register_model("linear_test", family="linear", input_size=(4, 1, 1), tags=("test",))(_tiny_builder)
    model = registry.create_model("linear_test", num_classes=3)
    assert model[1].out_features == 3
    info = registry.model_info("linear_test")
    assert info["num_params"] == 4 * 10 + 10
    assert info["family"] == "linear"
    assert info["pretrained"] is None
    assert registry.list_models(tags=["test"]) == ["linear_test"]


def test_same_builder_twice_is_fine_but_a_taken_name_is_an_error(clean_registry) -> None:
    registry.register_model("dup_test")(_tiny_builder)
    registry.register_model("dup_test")(_tiny_builder)  # a module imported twice
    with pytest.raises(registry.RegistrationError, match=r"'dup_test' is already registered by .*_tiny_builder"):
        registry.register_model("dup_test")(lambda num_classes=10: None)


def test_list_models_filters() -> None:
    assert registry.list_models("resnet50_*") == [
        "resnet50_gn_scratch",
        "resnet50_gn_timm_pretrained",
        "resnet50_scratch",
        "resnet50_timm_pretrained",
    ]
    assert registry.list_models(["resnet18*", "plain*"]) == [
        "plain101_scratch",
        "plain50_scratch",
        "plain_tiny_scratch",
        "resnet18_scratch",
    ]
    pretrained = registry.list_models(pretrained=True)
    assert {"resnet101_timm_pretrained", "resnet50_timm_pretrained"} <= set(pretrained)
    assert all(n.endswith("_timm_pretrained") for n in pretrained)
    scratch = registry.list_models(pretrained=False)
    assert "resnet50_scratch" in scratch
    assert not any("pretrained" in n for n in scratch)
    assert registry.list_models(tags=["tiny"]) == ["plain_tiny_scratch", "resnet_tiny_scratch"]
    assert registry.list_models("RESNET50_SCRATCH") == ["resnet50_scratch"]


def test_unknown_name_lists_closest() -> None:
    with pytest.raises(KeyError) as error:
        registry.create_model("resnet05_scratch")
    message = str(error.value)
    assert isinstance(error.value, registry.UnknownModelError)
    assert message.startswith("unknown model 'resnet05_scratch' (closest: resnet50_scratch")
    assert "register_model" in message
    assert "\n" not in message


def test_importing_registry_does_not_import_torch() -> None:
    # Discovery (on first lookup) imports the zoo's models and so torch; the import alone must not.
    result = subprocess.run(
        [sys.executable, "-c", "import sys, registry; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"


def test_zoo_models_arrive_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    assert "zoo" in {ep.value for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    code = textwrap.dedent(
        """
        import sys, registry
        model = registry.create_model("resnet50_scratch", num_classes=10)
        assert "zoo" in sys.modules and type(model).__module__ == "zoo.resnet"
        print(model.fc.out_features)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "10"


def _install_plugin(site: Path, dist: str, module: str, body: str) -> None:
    """Install a package into `site` as pip would: the module and a dist-info with its entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zoo.models]\n{dist} = {module}\n")


def test_plugin_models_are_found_and_broken_plugins_skipped(
    clean_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(
        tmp_path,
        "zoo_test_plugin",
        "zoo_test_plugin",
        """
        import torch
        from registry import register_model

        @register_model(family="mlp", description="A plugin's model", input_size=(3, 8, 8), tags=("plugin",))
        def plugin_mlp(num_classes: int = 10):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, num_classes))
        """,
    )
    _install_plugin(tmp_path, "zoo_broken_plugin", "zoo_broken_plugin", "raise ImportError('missing dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(core, "_discovered", False)
    with pytest.warns(RuntimeWarning, match=r"skipped the zoo.models plugin 'zoo_broken_plugin' .*missing dependency"):
        names = registry.list_models()
    assert "plugin_mlp" in names
    assert "resnet50_scratch" in names
    assert registry.create_model("plugin_mlp", num_classes=4)[1].out_features == 4
    assert registry.model_info("plugin_mlp")["description"] == "A plugin's model"
    sys.modules.pop("zoo_test_plugin", None)
