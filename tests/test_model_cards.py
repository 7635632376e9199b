"""Model cards: the index's card fields, `zoo models` filters and sorts, and listing without torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import registry
from experiments.cli import main
from experiments.commands.models import COLUMNS
from registry import core, index

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = json.loads((ROOT / "zoo" / "model_index.json").read_text(encoding="utf-8"))


def test_zoo_models_reads_the_index_without_torch_or_the_plugin() -> None:
    # A fresh interpreter, as a user's shell starts one: `zoo models`, list_models and
    # model_info of an indexed model, then what they loaded, how long and how much memory.
    driver = textwrap.dedent(
        """
        import contextlib, io, json, resource, sys, time
        def peak_mb():
            # VmHWM is this program's own peak; ru_maxrss would also count the forking pytest's
            # memory, which Linux carries across exec.
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        import experiments.cli
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = experiments.cli.main(["models"])
        wall = time.perf_counter() - start
        import registry
        names = registry.list_models()
        info = registry.model_info("resnet152_scratch")
        print(json.dumps({
            "code": code, "lines": len(out.getvalue().splitlines()), "wall": wall,
            "rss_mb": peak_mb(),
            "loaded": [m for m in ("torch", "timm", "torchvision", "zoo") if m in sys.modules],
            "names": len(names), "params": info["num_params"],
        }))
        """
    )
    done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] == 0
    assert found["loaded"] == [], f"zoo models imported {found['loaded']}"
    assert found["names"] == len(SHIPPED["models"])
    assert found["lines"] == found["names"] + 2
    assert found["params"] == SHIPPED["models"]["resnet152_scratch"]["num_params"]
    # docs/models.md gives the figures measured here (0.3-0.6 s, 25 MB); these bounds
    # only catch a return to building models (10 s and 840 MB before the index).
    assert found["wall"] < 10, found
    assert found["rss_mb"] < 400, found


def _ship_plugin(site: Path, module: str, entry: str | None, body: str = "raise ImportError('imported')\n") -> None:
    """A plugin package with an index, whose import fails: listing must not import it."""
    package = site / module
    package.mkdir()
    (package / "__init__.py").write_text(body)
    entry_points = [entry] if entry else []
    model = {
        "builder": f"{module}.tiny",
        "description": "a plugin's indexed model",
        "family": "plugin",
        "flops": 10,
        "input_size": [3, 8, 8],
        "num_params": 7,
        "pretrained": None,
        "pretrained_cfg": {},
        "tags": ["scratch"],
    }
    document = {"entry_points": entry_points, "models": {f"{module}_tiny": model}}
    (package / "model_index.json").write_text(json.dumps(document))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zoo.models]\n{module} = {module}\n")


@pytest.fixture
def undiscovered(monkeypatch: pytest.MonkeyPatch):
    """The registry as a fresh process has it: plugins not imported yet (restored afterwards)."""
    registry.discover_plugins()
    monkeypatch.setattr(core, "_models", dict(core._models))
    monkeypatch.setattr(core, "_discovered", False)
    index.clear_cache()
    yield core
    index.clear_cache()


def test_an_indexed_plugin_is_listed_and_described_without_importing_it(
    undiscovered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ship_plugin(tmp_path, "zoo_cards_plugin", "zoo_cards_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "zoo_cards_plugin_tiny" in registry.list_models()
    assert "resnet50_scratch" in registry.list_models()
    info = registry.model_info("zoo_cards_plugin_tiny")
    assert (info["num_params"], info["family"], info["input_size"]) == (7, "plugin", (3, 8, 8))
    assert info["top1"] is None
    assert info["train_img_s"] is None
    assert info["throughput_source"].startswith("not measured: its package's index carries no throughput")
    assert "zoo_cards_plugin" not in sys.modules
    assert not core._discovered


def test_a_plugin_whose_index_does_not_cover_its_entry_point_is_imported(
    undiscovered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index that does not name the entry point may be stale or partial: import, as before.
    _ship_plugin(tmp_path, "zoo_cards_uncovered", None)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert index.covering_index(core.ENTRY_POINT_GROUP) is None
    with pytest.warns(RuntimeWarning, match="zoo_cards_uncovered"):  # its import fails on purpose
        names = registry.list_models()
    assert core._discovered
    assert "resnet50_scratch" in names
    assert "zoo_cards_uncovered_tiny" not in names


def test_every_card_has_the_index_fields() -> None:
    for name, entry in SHIPPED["models"].items():
        info = registry.model_info(name)
        assert info["block"]["layers"], f"{name}: no block settings (a block_settings dict, as ResNet has)"
        assert info["top1_source"], f"{name}: an empty top-1 must say why"
        if entry["pretrained"]:
            assert info["license"] == entry["pretrained_cfg"]["license"], name
        else:
            assert info["license"] is None, name
            assert info["top1"] is None, name
        assert info["throughput_source"], f"{name}: empty throughput figures must say why"
    resnext = registry.model_info("resnext50_32x4d_scratch")["block"]
    assert (resnext["block"], resnext["cardinality"], resnext["width_per_group"]) == ("Bottleneck", 32, 4)
    assert registry.model_info("seresnet50_scratch")["block"]["attn_layer"] == "se"
    assert registry.model_info("resnet50d_scratch")["block"]["stem_type"] == "deep"


def test_published_top1_is_torchvision_metadata_for_torchvision_files() -> None:
    from torchvision.models import ResNeXt101_32X8D_Weights

    card = registry.model_info("resnext101_32x8d_timm_pretrained")
    assert card["top1"] == ResNeXt101_32X8D_Weights.IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert "ResNeXt101_32X8D_Weights.IMAGENET1K_V1" in card["top1_source"]
    timm_only = registry.model_info("resnet50_timm_pretrained")
    assert timm_only["top1"] == 80.382  # timm's results table, at the weights' 224px (tests/test_published_top1.py)
    assert "results/results-imagenet.csv" in timm_only["top1_source"]


def test_filter_sort_and_columns(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["models", "--filter", "family=resnext", "--filter", "gflops>20", "--sort", "params", "--reverse"]
    assert main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [
        "resnext101_32x8d_scratch",
        "resnext101_32x8d_timm_pretrained",
        "resnext101_64x4d_scratch",
        "resnext101_64x4d_timm_pretrained",
    ]
    assert list(rows[0]) == list(COLUMNS)
    assert rows[1]["top1"] == 79.312
    assert rows[1]["license"] == "bsd-3-clause"
    assert rows[1]["groups"] == "32x8d"
    assert (
        main(["models", "*resne*", "--scratch", "--filter", "attn!=-", "--sort", "attn,name", "--columns", "name,attn"])
        == 0
    )
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == ["name", "attn"]
    assert lines[2:] == [
        ["ecaresnet101d_scratch", "eca"],
        ["ecaresnet50d_scratch", "eca"],
        ["resnetrs101_scratch", "se"],  # ResNet-RS has squeeze-excitation, as in timm
        ["resnetrs50_scratch", "se"],
        ["seresnet152d_scratch", "se"],
        ["seresnet50_scratch", "se"],
        ["seresnext101d_32x8d_scratch", "se"],
        ["seresnext50_32x4d_scratch", "se"],
    ]
    argv = ["models", "--filter", "top1>83", "--sort", "top1", "--format", "csv", "--columns", "name,top1"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "seresnet152d_timm_pretrained,83.702",
        "seresnext101d_32x8d_timm_pretrained,83.702",
        "resnet200d_timm_pretrained,83.25",
        "resnet152d_timm_pretrained,83.16",
    ]
    assert main(["models", "--filter", "top1_source=torchvision*", "--format", "csv", "--columns", "name,top1"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "resnext101_32x8d_timm_pretrained,79.312",
        "wide_resnet101_2_timm_pretrained,78.848",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "--sort", "speed"], "unknown column 'speed' in --sort; the columns are: name, family"),
        (["models", "--filter", "colour=red"], "unknown column 'colour' in --filter; the columns are:"),
        (["models", "--columns", "name,size"], "unknown column 'size' in --columns"),
        (["models", "--filter", "family"], "--filter 'family' needs COLUMN=VALUE"),
        (["models", "--filter", "gflops<few"], "compares with a number, got 'few'"),
        (["models", "--filter", "family=nothing"], "no registered model matches --filter 'family=nothing'"),
    ],
)
def test_bad_columns_and_filters_are_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


NODE_CHECK = """
const { sortTable, filterTables } = require(process.argv[1]);
const cell = (text, sort) => ({
  textContent: text,
  hasAttribute: (n) => n === "data-sort" && sort !== undefined,
  getAttribute: () => sort,
});
const row = (cells) => ({
  cells, hidden: false, get textContent() { return cells.map((c) => c.textContent).join(" "); },
});
const header = (text) => {
  const attrs = {};
  return {
    textContent: text, setAttribute: (k, v) => { attrs[k] = v; },
    getAttribute: (k) => (k in attrs ? attrs[k] : null), removeAttribute: (k) => { delete attrs[k]; },
  };
};
const rows = [
  row([cell("resnet101"), cell("30 M", "30000000"), cell("-", "")]),
  row([cell("resnet50"), cell("100 M", "100000000"), cell("79.31", "79.312")]),
  row([cell("resnet26"), cell("5,000", "5000"), cell("78.85", "78.848")]),
];
const body = { rows: rows.slice(), appendChild(r) { this.rows.splice(this.rows.indexOf(r), 1); this.rows.push(r); } };
const headers = [header("Name"), header("Parameters"), header("Top-1")];
const heading = { tagName: "H3", hidden: false };
const table = { tBodies: [body], tHead: { rows: [{ cells: headers }] }, hidden: false, parentElement: null,
                previousElementSibling: heading };
const names = () => body.rows.map((r) => r.cells[0].textContent);
const seen = {};
for (const [key, index] of [["name", 0], ["params", 1], ["params_again", 1], ["top1", 2], ["top1_again", 2]]) {
  sortTable(table, index, headers[index]);
  seen[key] = names();
}
filterTables([table], "RESNET 50");
seen.filtered = body.rows.filter((r) => !r.hidden).map((r) => r.cells[0].textContent);
filterTables([table], "nothing");
seen.nothing = [table.hidden, heading.hidden];
filterTables([table], "");
seen.cleared = [body.rows.filter((r) => !r.hidden).length, table.hidden, heading.hidden];
console.log(JSON.stringify(seen));
"""


def test_the_docs_table_script_sorts_and_filters() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the table script's sorting is checked with it")
    script = ROOT / "docs" / "javascripts" / "model_tables.js"
    done = subprocess.run([node, "-e", NODE_CHECK, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert seen["name"] == ["resnet26", "resnet50", "resnet101"]  # numbers inside names sort as numbers
    assert seen["params"] == ["resnet26", "resnet101", "resnet50"]  # by data-sort, not by "5,000" or "30 M"
    assert seen["params_again"] == ["resnet50", "resnet101", "resnet26"]  # a second click reverses
    assert seen["top1"] == ["resnet26", "resnet50", "resnet101"]  # the empty top-1 last
    assert seen["top1_again"] == ["resnet50", "resnet26", "resnet101"]  # and still last reversed
    assert seen["filtered"] == ["resnet50"]  # every word, any case
    assert seen["nothing"] == [True, True]  # a family with no row left hides with its heading
    assert seen["cleared"] == [3, False, False]
