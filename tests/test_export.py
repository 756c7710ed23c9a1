"""Export round trips (ONNX through ONNX Runtime, torch.export's .pt2) on tiny models, the metadata that travels
with an artefact, the ONNX Runtime runner behind predict/evaluate, and the runtime benchmark suite."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import subprocess
import sys
import zipfile

import pytest
import torch
from conftest import TINY_ARGS
from videos import index_frames, write_video

pytest.importorskip("onnxruntime", reason="ONNX export tests need the [onnx] extra: pip install 'tokshift-zoo[onnx]'")
pytest.importorskip("onnxscript", reason="ONNX export tests need the [onnx] extra: pip install 'tokshift-zoo[onnx]'")

import tokshift_zoo  # noqa: E402
from tokshift_zoo import export, onnx_attention  # noqa: E402
from tokshift_zoo.cli import main  # noqa: E402
from tokshift_zoo.inference import evaluate, predict  # noqa: E402
from tokshift_zoo.models.registry import DEFAULT_MODEL  # noqa: E402
from tokshift_zoo.ready import load  # noqa: E402
from tokshift_zoo.video.transforms import resolve_data_config  # noqa: E402

TINY = "tokshift_base16_224_8f"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return tokshift_zoo.create_model(TINY, **TINY_ARGS).eval()


@pytest.fixture(scope="module")
def dynamic_onnx(tiny, tmp_path_factory):
    """The tiny model exported once to ONNX with a dynamic batch and clip length."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = export.export_model(tiny, path, frames="dynamic", dynamic_batch=True, check_clips=4)
    return path, result


def _eager(model, clips):
    with torch.no_grad():
        embedding = model.forward_head(model.forward_features(clips), pre_logits=True)
        return model.head(embedding), embedding


def test_onnx_round_trip_with_dynamic_batch_and_frames(tiny, dynamic_onnx):
    path, result = dynamic_onnx
    assert result["format"] == "onnx" and result["frames"] == "dynamic" and result["dynamic_batch"]
    assert result["max_abs_diff"] < 1e-4 and result["top1_agreement"] == 100.0  # the check against eager
    runner = export.load_artefact(path)
    assert isinstance(runner, export.OnnxRuntimeModel)
    for batch, frames in ((1, 8), (3, 5), (2, 1), (4, 12)):  # sizes other than the traced (2, 8)
        clips = torch.randn(batch, 3, frames, 32, 32)
        logits, embedding = runner.run(clips)
        expected_logits, expected_embedding = _eager(tiny, clips)
        assert logits.shape == (batch, 4) and embedding.shape == (batch, 32)
        torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(embedding, expected_embedding, atol=1e-5, rtol=1e-4)


def test_onnx_attention_is_one_node_per_block_without_head_copies(tiny, dynamic_onnx):
    import onnx

    proto = onnx.load(dynamic_onnx[0])
    ops = [node.op_type for node in proto.graph.node]
    assert {entry.domain: entry.version for entry in proto.opset_import}[""] == onnx_attention.ONNX_OPSET
    assert ops.count("Attention") == len(tiny.blocks) and "Softmax" not in ops and "Split" not in ops
    producer = {output: node.op_type for node in proto.graph.node for output in node.output}
    consumers = [(node.op_type, name) for node in proto.graph.node for name in node.input]
    for node in proto.graph.node:
        if node.op_type == "Attention":  # on the 3-d projections: the heads split by the attribute, not by copies
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attributes["q_num_heads"] == attributes["kv_num_heads"] == tiny.blocks[0].attn.num_heads
            assert {producer[name] for name in node.input} <= {"MatMul", "Add", "Gemm"}  # no Transpose, Split
            assert {op for op, name in consumers if name == node.output[0]} <= {"MatMul", "Gemm"}  # the proj


def test_older_opset_keeps_timms_attention_graph(tiny, tmp_path):
    import onnx

    result = export.export_model(tiny, tmp_path / "op18.onnx", opset=18, check_clips=2)
    assert result["opset"] == 18 and result["max_abs_diff"] < 1e-4
    ops = [node.op_type for node in onnx.load(tmp_path / "op18.onnx").graph.node]
    assert "Attention" not in ops and ops.count("Softmax") == len(tiny.blocks)
    with pytest.raises(tokshift_zoo.ConfigError, match="opset must be 18 to 23"):
        export.export_model(tiny, tmp_path / "op17.onnx", opset=17)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["op18.onnx"]


def test_export_attention_computes_what_timm_attention_does(tiny):
    copy = onnx_attention.with_export_attention(tiny)
    assert all(isinstance(block.attn, onnx_attention.ExportAttention) for block in copy.blocks)
    assert all(type(block.attn).__name__ == "Attention" for block in tiny.blocks)  # the model itself is kept
    tokens = torch.randn(3, 17, tiny.embed_dim)
    with torch.no_grad():
        torch.testing.assert_close(copy.blocks[1].attn(tokens), tiny.blocks[1].attn(tokens), atol=1e-6, rtol=1e-5)
        clips = torch.randn(2, 3, 8, 32, 32)
        torch.testing.assert_close(copy(clips), tiny(clips), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="without a mask"):
        copy.blocks[0].attn(tokens, attn_mask=torch.zeros(17, 17))


def test_metadata_travels_with_the_artefact(tiny, dynamic_onnx):
    path, result = dynamic_onnx
    meta = export.read_metadata(path)
    assert meta == result["metadata"]
    config = resolve_data_config(tiny)
    assert meta["frames"] == "dynamic" and meta["trained_frames"] == config.num_frames == 8
    assert meta["frame_stride"] == 32 and meta["sampling"] == "dense" and meta["size"] == [32, 32]
    assert meta["mean"] == [0.5, 0.5, 0.5] and meta["std"] == [0.5, 0.5, 0.5]
    assert meta["views"] == "10x3" and meta["interpolation"] == "bilinear"
    assert meta["input"]["name"] == "clips" and meta["input"]["shape"] == ["batch", 3, "frames", 32, 32]
    assert meta["outputs"] == {"logits": ["batch", 4], "embedding": ["batch", 32]}
    # the runner rebuilds the same preprocessing from the metadata alone
    assert export.load_artefact(path).data_config == config
    # read with plain onnx too, as a server in another language would
    import onnx

    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(props["tokshift_zoo"])["mean"] == [0.5, 0.5, 0.5]


def test_onnxruntime_predict_and_evaluate_match_eager(tiny, dynamic_onnx, tmp_path):
    runner = export.load_artefact(dynamic_onnx[0])
    video = write_video(tmp_path / "clip.mp4", index_frames(range(120)), fps=30)
    eager = predict(tiny, video, views="2x3", topk=4)
    onnx = predict(runner, video, views="2x3", topk=4)
    assert [p["index"] for p in onnx] == [p["index"] for p in eager]
    torch.testing.assert_close(
        torch.tensor([p["score"] for p in onnx]), torch.tensor([p["score"] for p in eager]), atol=1e-5, rtol=0
    )
    samples = [(str(video), 0), (str(video), 1)]
    assert evaluate(runner, samples, views="1x3", progress=False) == evaluate(
        tiny, samples, views="1x3", progress=False
    )


def test_pt2_round_trip_with_dynamic_batch_and_metadata(tiny, tmp_path):
    path = tmp_path / "tiny.pt2"
    result = export.export_model(tiny, path, dynamic_batch=True, check_clips=2)
    assert result["format"] == "pt2" and result["max_abs_diff"] < 1e-5
    meta = export.read_metadata(path)
    assert meta["frames"] == 8 and meta["input"]["shape"] == ["batch", 3, 8, 32, 32] and meta["format"] == "pt2"
    model = export.load_artefact(path)
    assert isinstance(model, export.ExportedModel) and model.data_config == resolve_data_config(tiny)
    clips = torch.randn(3, 3, 8, 32, 32)
    torch.testing.assert_close(model(clips), _eager(tiny, clips)[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="needs --format onnx"):
        export.export_model(tiny, tmp_path / "x.pt2", int8=True)


@pytest.fixture(scope="module")
def pt2(tiny, tmp_path_factory):
    """The tiny model exported once to .pt2 (fixed shapes)."""
    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    export.export_model(tiny, path, check=False)
    return path


class _Touch:
    """Unpickled, it creates ``path`` (what a hostile payload could do instead: anything)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _rewrite_pt2(src, dst, change):
    """Copy a .pt2 member by member; ``change(name, data) -> data`` edits members (name below the root folder)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            root, name = info.filename.split("/", 1)
            new.writestr(info, change(name, old.read(info)))
    return dst


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("payload", ["weight marked use_pickle", "sample inputs", "legacy weights file"])
def test_a_hostile_pt2_runs_no_code_its_metadata_reads_and_loading_is_refused(pt2, tmp_path, payload):
    marker = tmp_path / "marker"
    evil = _pickled(_Touch(marker))

    def change(name, data):
        if payload == "weight marked use_pickle" and name == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["model.cls_token"]["use_pickle"] = True
            return json.dumps(config).encode()
        if payload == "weight marked use_pickle" and name == "data/weights/" + _weight_file(pt2, "model.cls_token"):
            return evil
        if payload == "sample inputs" and name == "data/sample_inputs/model.pt":
            return evil
        return data

    hostile = _rewrite_pt2(pt2, tmp_path / "hostile.pt2", change)
    if payload == "legacy weights file":  # torch reads data/weights/model.pt (a pickle) before the new layout
        with zipfile.ZipFile(hostile, "a") as archive:
            root = archive.namelist()[0].split("/")[0]
            archive.writestr(f"{root}/data/weights/model.pt", evil)

    assert export.read_metadata(hostile)["model"] == export.read_metadata(pt2)["model"]
    with pytest.raises(export.UnsafeArtefactError, match=r"hostile.pt2: refusing to load it: .*unpickle"):
        export.load_artefact(hostile)
    with pytest.raises(export.UnsafeArtefactError):
        export.ExportedModel(hostile)
    assert not marker.exists()
    with contextlib.suppress(Exception):  # the payload is live: torch.export.load itself runs it
        torch.export.load(hostile)
    assert marker.exists()


def _weight_file(pt2, fqn):
    with zipfile.ZipFile(pt2) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data/weights/model_weights_config.json"))
        return json.loads(archive.read(name))["config"][fqn]["path_name"]


def test_a_pt2_rewritten_without_changes_still_loads_and_a_flipped_byte_is_refused(tiny, pt2, tmp_path):
    copy = _rewrite_pt2(pt2, tmp_path / "copy.pt2", lambda name, data: data)
    clips = torch.randn(1, 3, 8, 32, 32)
    torch.testing.assert_close(export.load_artefact(copy)(clips), _eager(tiny, clips)[0], atol=1e-5, rtol=1e-4)
    data = bytearray(pt2.read_bytes())
    with zipfile.ZipFile(pt2) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/" + _weight_file(pt2, "model.cls_token")))
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + 1] ^= 0xFF  # a byte of the weight's data
    (tmp_path / "flipped.pt2").write_bytes(bytes(data))
    with pytest.raises(tokshift_zoo.ConfigError, match=r"flipped.pt2: damaged: member .* does not match its CRC"):
        export.load_artefact(tmp_path / "flipped.pt2")
    (tmp_path / "plain.pt2").write_bytes(b"not a zip")
    with pytest.raises(tokshift_zoo.ConfigError, match="plain.pt2: not a .pt2 archive"):
        export.read_metadata(tmp_path / "plain.pt2")


def test_pt2_with_dynamic_frames(tiny, tmp_path):
    path = tmp_path / "tiny_frames.pt2"
    export.export_model(tiny, path, frames="dynamic", dynamic_batch=True, check=False)
    model = export.load_artefact(path)
    for batch, frames in ((1, 3), (2, 8), (1, 1)):
        clips = torch.randn(batch, 3, frames, 32, 32)
        torch.testing.assert_close(model(clips), _eager(tiny, clips)[0], atol=1e-5, rtol=1e-4)


def test_fixed_batch_artefact_runs_any_batch_in_chunks(tiny, tmp_path):
    path = tmp_path / "fixed.onnx"
    export.export_model(tiny, path, frames=4, check=False)
    runner = export.load_artefact(path)
    assert runner.batch == 1 and runner.num_frames == 4
    clips = torch.randn(3, 3, 4, 32, 32)
    torch.testing.assert_close(runner(clips), _eager(tiny, clips)[0], atol=1e-5, rtol=1e-4)


def test_cli_export_int8_and_predict_evaluate_with_onnxruntime(tmp_path, capsys):
    out = tmp_path / "demo_int8.onnx"
    assert main(["export", DEFAULT_MODEL, str(out), "--int8", "--batch", "dynamic", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["int8"] and result["check_clips"] == 8
    assert result["top1_agreement"] >= 75.0 and result["embedding_cosine_min"] > 0.99
    meta = export.read_metadata(out)
    assert meta["int8"] and meta["labels"] == ["moving_left", "moving_right", "moving_up", "moving_down"]
    assert meta["model"].startswith("tokshift_demo_motion")

    video = tmp_path / "clip.mp4"
    write_video(video, index_frames(range(40), height=32, width=32), fps=12)
    assert main(["predict", str(video), "--views", "1x3", "--json", "--device", "cpu"]) == 0
    eager = json.loads(capsys.readouterr().out)
    assert main(["predict", str(video), "--views", "1x3", "--json", "--runtime", "onnxruntime"]) == 0
    onnx = json.loads(capsys.readouterr().out)
    assert eager["runtime"] == "eager" and onnx["runtime"] == "onnxruntime"
    for a, b in zip(eager["predictions"], onnx["predictions"], strict=True):
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-5)

    (tmp_path / "list.txt").write_text("clip.mp4 moving_left\n")
    argv = ["evaluate", "--list", str(tmp_path / "list.txt"), "--data-root", str(tmp_path), "--no-progress"]
    assert main([*argv, "--runtime", "onnxruntime", "--int8"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime"] == "onnxruntime-int8"
    assert main([*argv, "--int8"]) == 2  # int8 without ONNX Runtime is a usage error
    assert "needs --runtime onnxruntime" in capsys.readouterr().err


def test_missing_onnx_extra_is_named(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'tokshift-zoo\[onnx\]'"):
        export.OnnxRuntimeModel(tmp_path / "any.onnx")
    with pytest.raises(ImportError, match="onnxruntime"):
        export.runtime_model(tiny, "onnxruntime", int8=True)
    assert not list(tmp_path.iterdir())  # nothing half-written
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", DEFAULT_MODEL, str(tmp_path / "m.onnx")]) == 1
    assert "pip install 'tokshift-zoo[onnx]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_core_imports_do_not_pull_the_onnx_extra():
    code = (
        "import sys, tokshift_zoo, tokshift_zoo.export, tokshift_zoo.benchmark, tokshift_zoo.cli; "
        "print(sorted(m for m in ('onnx', 'onnxscript', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runtime_model_and_errors(tiny):
    assert export.runtime_model(tiny, "eager") is tiny
    with pytest.raises(ValueError, match="runtime must be one of"):
        export.runtime_model(tiny, "tensorrt")
    with pytest.raises(ValueError, match="frames must be"):
        export.export_model(tiny, "x.onnx", frames="many")


def test_runtime_suite_on_a_tiny_model():
    from tokshift_zoo.benchmark import runtime_suite

    rows = runtime_suite(
        model_kwargs=TINY_ARGS, num_frames=4, reps=3, compile_backend="aot_eager", agreement_clips=3, min_seconds=0.02
    )
    by = {row["runtime"]: row for row in rows}
    assert list(by) == ["eager fp32", "torch.compile", "onnxruntime fp32", "onnxruntime int8"]
    assert by["eager fp32"]["vs_eager"] == 1.0 and by["eager fp32"]["max_abs_diff"] == 0.0  # against itself
    for row in rows:
        assert row["top1_agreement"] == 100.0 or row["runtime"] == "onnxruntime int8"
        assert row["ms_min"] <= row["ms"] and row["vs_eager_range"][0] <= row["vs_eager"] <= row["vs_eager_range"][1]
    assert by["torch.compile"]["max_abs_diff"] < 1e-5 and by["onnxruntime fp32"]["max_abs_diff"] < 1e-4
    assert by["onnxruntime fp32"]["embedding_cosine_min"] > 0.99999
    assert 0 < by["onnxruntime int8"]["max_abs_diff"] < 0.1 and by["onnxruntime int8"]["embedding_cosine_min"] > 0.99


def test_runtime_accuracy_of_the_demo_model(tmp_path):
    from tokshift_zoo.benchmark import runtime_accuracy

    rows = runtime_accuracy(num_clips=4, workdir=tmp_path, runtimes=(("eager", False), ("onnxruntime", True)))
    assert [row["runtime"] for row in rows] == ["eager", "onnxruntime-int8"]
    assert all(row["clips"] == 4 for row in rows)
    assert rows[0]["top1_vs_eager"] == 0.0
    assert rows[1]["top1_vs_eager"] == pytest.approx(rows[1]["top1"] - rows[0]["top1"])
    # the demo model knows its task; int8 may flip at most one of four clips
    assert rows[0]["top1"] >= 75.0 and abs(rows[1]["top1_vs_eager"]) <= 25.0
    assert (tmp_path / "list.txt").exists()
    assert load(DEFAULT_MODEL, device="cpu").num_classes == 4


@pytest.mark.cuda
def test_onnxruntime_runtime_of_a_cuda_model_leaves_it_there(tiny):
    import copy

    model = copy.deepcopy(tiny).cuda()
    runner = export.runtime_model(model, "onnxruntime")
    assert next(model.parameters()).is_cuda  # exported from a CPU copy
    clips = torch.randn(2, 3, 8, 32, 32)
    torch.testing.assert_close(runner(clips), _eager(tiny, clips)[0], atol=1e-5, rtol=1e-4)
