"""``cn.onnx.export`` and ``cnnumpy export``: every zoo model and every layer, written as ONNX,
checked by ``onnx.checker`` and run in ONNX Runtime, the reference for the outputs; LRN's
definition checked against PyTorch's; clear errors for what cannot be exported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import assert_close

from cnnumpy import cli, nn
from cnnumpy.checkpoint import save_checkpoint
from cnnumpy.models import MODELS, build_model
from cnnumpy.models.lenet import LENET5_C3_TABLE
from cnnumpy.onnx import ExportError, export, load  # noqa: E402

RTOL = 1e-5  # float32, relative to the largest output
# Every operator an export may use: the standard (default-domain) set, nothing custom.
STANDARD_OPS = {
    "Add", "AveragePool", "BatchNormalization", "Concat", "Constant", "Conv", "ConvTranspose",
    "Div", "Elu", "Flatten", "Gemm", "GlobalAveragePool", "Identity", "LRN", "LeakyRelu",
    "LogSoftmax", "MaxPool", "Mul", "PRelu", "Pad", "Pow", "ReduceSum", "Relu", "Sigmoid",
    "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Unsqueeze",
}  # fmt: skip


def run_ort(proto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def randomize_state(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """Batch norms with non-trivial statistics and affine parameters, and no parameter left
    all zeros (lenet_theano's classifier starts at zero), so no part of a model is trivial."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            c = m.num_features
            m.running_mean = rng.normal(0, 0.2, c).astype(m.running_mean.dtype)
            m.running_var = rng.uniform(0.5, 1.5, c).astype(m.running_var.dtype)
            if m.affine:
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
                m.bias.data[...] = rng.normal(0, 0.2, c)
    for p in model.parameters():
        if not p.data.any():
            p.data[...] = rng.normal(0, 0.1, p.shape)
    return model


def zoo_model(name: str, dtype=np.float32) -> tuple[nn.Module, tuple[int, ...]]:
    """The tiny model ``name`` in eval mode and its input shape (C, H, W)."""
    size, channels = MODELS[name].tiny_size, 1 if name.startswith("lenet") else 3
    model = build_model(name, tiny=True, input_size=size, in_channels=channels,
                        rng=np.random.default_rng(0))  # fmt: skip
    model.to(dtype)
    return randomize_state(model, np.random.default_rng(1)).eval(), (channels, size, size)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_zoo_model_runs_in_onnxruntime(name):
    model, shape = zoo_model(name)
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    proto = export(model, x[:1])
    assert proto.opset_import[0].version >= 17
    assert {n.op_type for n in proto.graph.node} <= STANDARD_OPS
    assert all(n.domain == "" for n in proto.graph.node)
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N", "the batch axis must be dynamic"
    for n in (1, 3):
        assert_close(model(x[:n]), run_ort(proto, x[:n]), rtol=RTOL, name=f"{name} batch {n}")


# One case per layer the library exports, with the settings that change the mapping:
# (module, input shape).
LAYER_CASES = {
    "conv-groups-dilation": (lambda r: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2,
                                                 groups=2, rng=r), (4, 9, 9)),
    "conv-same": (lambda r: nn.Conv2d(2, 3, (2, 4), padding="same", bias=False, rng=r), (2, 7, 8)),
    "conv-transpose": (lambda r: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                    output_padding=1, groups=2, rng=r), (4, 5, 5)),
    "linear-on-maps": (lambda r: nn.Linear(2 * 3 * 3, 4, rng=r), (2, 3, 3)),
    "maxpool-ceil-pad": (lambda r: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 8, 8)),
    "avgpool-no-pad-count": (lambda r: nn.AvgPool2d(3, 1, 1, count_include_pad=False), (2, 5, 5)),
    "avgpool-ceil": (lambda r: nn.AvgPool2d(2, 2, ceil_mode=True), (2, 5, 5)),
    "global-avgpool": (lambda r: nn.AdaptiveAvgPool2d(1), (3, 4, 5)),
    "batchnorm1d": (lambda r: nn.BatchNorm1d(5), (5,)),
    "batchnorm2d-no-affine": (lambda r: nn.BatchNorm2d(3, affine=False), (3, 4, 4)),
    "lrn-odd": (lambda r: nn.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=1.5), (7, 3, 3)),
    "lrn-even": (lambda r: nn.LocalResponseNorm(4, alpha=0.2, beta=0.75, k=2.0), (7, 3, 3)),
    "relu": (lambda r: nn.ReLU(), (3, 4)),
    "noisy-relu": (lambda r: nn.NoisyReLU(rng=r), (3, 4)),
    "leaky-relu": (lambda r: nn.LeakyReLU(0.2), (3, 4)),
    "elu": (lambda r: nn.ELU(0.7), (3, 4)),
    "prelu-channels": (lambda r: nn.PReLU(3, 0.3), (3, 4, 4)),
    "prelu-one": (lambda r: nn.PReLU(1, 0.3), (3, 4, 4)),
    "sigmoid": (lambda r: nn.Sigmoid(), (6,)),
    "tanh": (lambda r: nn.Tanh(), (6,)),
    "scaled-tanh": (lambda r: nn.ScaledTanh(), (2, 3, 3)),
    "softmax": (lambda r: nn.Softmax(dim=1), (6,)),
    "log-softmax": (lambda r: nn.LogSoftmax(dim=1), (3, 2)),
    "dropout-inverted": (lambda r: nn.Dropout(0.3, rng=r), (6,)),
    "dropout-2012": (lambda r: nn.Dropout(0.3, inverted=False, rng=r), (6,)),
    "flatten": (lambda r: nn.Flatten(), (2, 3, 3)),
    "constant-pad": (lambda r: nn.ConstantPad2d((1, 2, 0, 3), -0.1), (2, 3, 3)),
    "subsampling-overlap": (lambda r: nn.Subsampling(3, 3, stride=2, rng=r), (3, 7, 7)),
    "table-conv": (lambda r: nn.TableConv2d(6, LENET5_C3_TABLE, 3, rng=r), (6, 5, 5)),
    "rbf": (lambda r: nn.RBFOutput(6, 4, rng=r), (6,)),
    "concat": (lambda r: nn.Concat(nn.Conv2d(2, 1, 1, rng=r), nn.MaxPool2d(3, 1, 1)), (2, 4, 4)),
    "residual-identity": (lambda r: nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1,
                                                                        rng=r), nn.Tanh())),
                          (2, 4, 4)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_every_layer_matches_onnxruntime(case):
    rng = np.random.default_rng(0)
    make, shape = LAYER_CASES[case]
    model = randomize_state(make(rng), rng).eval()
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    proto = export(model, x[:1])
    assert_close(model(x), run_ort(proto, x), rtol=RTOL, name=case)


def onnx_lrn_model(size: int, alpha: float, beta: float, k: float, shape: tuple[int, ...]):
    """A graph of one ONNX ``LRN`` node, written by hand."""
    helper = onnx.helper
    node = helper.make_node("LRN", ["input"], ["output"], size=size, alpha=alpha, beta=beta,
                            bias=k)  # fmt: skip
    info = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, list(shape))
            for n in ("input", "output")]  # fmt: skip
    return helper.make_model(helper.make_graph([node], "lrn", info[:1], info[1:]),
                             opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip


@pytest.mark.parametrize("size", [1, 3, 5])
def test_onnx_lrn_is_pytorchs_definition(size):
    """Both divide alpha by size: ``x / (k + alpha/size * sum x^2)^beta`` over the same window
    for an odd size (the references: ONNX Runtime's LRN node and PyTorch's function)."""
    alpha, beta, k = 0.3, 0.7, 1.2
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 3)).astype(np.float32)
    onnx_lrn = run_ort(onnx_lrn_model(size, alpha, beta, k, x.shape), x)
    torch_lrn = torch.nn.functional.local_response_norm(torch.tensor(x), size, alpha, beta, k)
    assert_close(onnx_lrn, torch_lrn.numpy(), rtol=RTOL, name="ONNX LRN vs PyTorch")
    exported = export(nn.LocalResponseNorm(size, alpha, beta, k), x[:1])
    assert_close(run_ort(exported, x), torch_lrn.numpy(), rtol=RTOL, name="exported LRN")


@pytest.mark.parametrize("size", [2, 4])
def test_even_lrn_is_exported_as_pytorchs_arithmetic(size):
    """ONNX Runtime refuses an even-size LRN node (its window would also sit one channel
    later than PyTorch's), so the export writes PyTorch's formula out in standard ops."""
    alpha, beta, k = 0.3, 0.7, 1.2
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 3)).astype(np.float32)
    with pytest.raises(Exception, match="size_ % 2 == 1"):
        run_ort(onnx_lrn_model(size, alpha, beta, k, x.shape), x)
    exported = export(nn.LocalResponseNorm(size, alpha, beta, k), x[:1])
    assert "LRN" not in {n.op_type for n in exported.graph.node}
    torch_lrn = torch.nn.functional.local_response_norm(torch.tensor(x), size, alpha, beta, k)
    assert_close(run_ort(exported, x), torch_lrn.numpy(), rtol=RTOL, name="exported LRN")


def test_lenet5_maps_its_special_layers_to_standard_ops():
    model, _ = zoo_model("lenet5")
    proto = export(model, np.zeros((1, 1, 28, 28), np.float32))
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    dense = weights["c3.weight"]
    assert dense.shape == (16, 6, 5, 5)
    for f, inputs in enumerate(LENET5_C3_TABLE):  # unconnected maps have zero kernels
        unconnected = [c for c in range(6) if c not in inputs]
        assert not dense[f, unconnected].any()
    assert weights["s2.weight"].shape == (6, 1, 1)
    np.testing.assert_array_equal(weights["s2.weight"].ravel(), model.s2.weight.data)
    np.testing.assert_array_equal(weights["output.weight"], model.output.weight.data)


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "alexnet", "googlenet"])
def test_an_imported_model_exports_again_under_the_same_names(name):
    """``load`` then ``export``: the nn.Graph's nodes go back to the operators they came from."""
    model, shape = zoo_model(name)
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    first = export(model, x[:1])
    again = export(load(first), x[:1])
    assert sorted(t.name for t in again.graph.initializer) == sorted(
        t.name for t in first.graph.initializer
    )
    assert_close(model(x), run_ort(again, x), rtol=RTOL, name=f"{name} exported twice")


def test_float64_models_export_as_double(tmp_path):
    model, shape = zoo_model("convnet", np.float64)
    path = tmp_path / "convnet.onnx"
    export(model, np.zeros((1, *shape)), path)
    proto = onnx.load(path)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert {t.data_type for t in proto.graph.initializer} == {onnx.TensorProto.DOUBLE}


class Doubler(nn.Module):
    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        return 2 * dout


class TwiceSequential(nn.Sequential):
    """A Sequential whose forward differs: it must not be exported as a plain chain."""

    def forward(self, x):
        return super().forward(super().forward(x))


def test_a_layer_without_mapping_is_an_error_naming_it():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), Doubler()))
    with pytest.raises(ExportError, match=r"'1\.1' \(Doubler\)"):
        export(model, np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ExportError, match=r"'<model>' \(TwiceSequential\)"):
        export(TwiceSequential(nn.ReLU()), np.zeros((1, 3), np.float32))
    stats_free = nn.Sequential(nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(ExportError, match=r"'0' \(BatchNorm2d\) with track_running_stats"):
        export(stats_free, np.zeros((2, 2, 3, 3), np.float32))


def test_bad_arguments_are_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ExportError, match="float64 but the parameters are"):
        export(model, np.zeros((1, 4)))
    with pytest.raises(ExportError, match="opset must be 17"):
        export(model, np.zeros((1, 4), np.float32), opset=13)


def test_cli_exports_a_checkpoint_as_onnx_and_safetensors(tmp_path, capsys):
    kwargs = {"in_channels": 1, "input_size": 8, "num_classes": 10, **MODELS["convnet"].tiny}
    model = build_model("convnet", rng=np.random.default_rng(0), **kwargs)
    checkpoint = tmp_path / "best.npz"
    save_checkpoint(
        checkpoint, model=model, epoch=3, history={}, model_name="convnet",
        rng_states={"model": np.random.default_rng(0)},
        normalization={"mean": [0.3], "std": [0.2]},
        extra={"config": {"model": "convnet", "model_kwargs": kwargs, "dataset": "digits"}},
    )  # fmt: skip
    assert cli.main(["export", str(checkpoint), str(tmp_path / "m.onnx")]) == 0
    proto = onnx.load(tmp_path / "m.onnx")
    assert {p.key: p.value for p in proto.metadata_props}["normalization"] == (
        '{"mean": [0.3], "std": [0.2]}'
    )
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    assert_close(model.eval()(x), run_ort(proto, x), rtol=RTOL, name="exported checkpoint")
    assert cli.main(["export", str(checkpoint), str(tmp_path / "w.safetensors")]) == 0
    assert "as safetensors" in capsys.readouterr().out
    assert cli.main(["export", str(tmp_path / "none.npz"), str(tmp_path / "x.onnx")]) == 1


def test_import_cnnumpy_does_not_need_onnx():
    """``onnx`` is optional: hidden, ``import cnnumpy`` works and export says what to install."""
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import numpy as np, cnnumpy as cn\n"
        "try:\n"
        "    cn.onnx.export(cn.nn.ReLU(), np.zeros((1, 2), np.float32))\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'cnnumpy[onnx]'" in out.stdout
