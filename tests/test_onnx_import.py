"""``cn.onnx.load``: ONNX files as trainable ``nn.Graph`` models.

Round trips (export, then import) give every zoo model's outputs and gradients back; PyTorch
twins exported by ``torch.onnx.export`` import with PyTorch's outputs and gradients (PyTorch is
the reference); single-node files of every supported operator agree with ONNX Runtime and with
numerical gradients; the Graph keeps the module contract; unsupported files are clear errors.
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pytest
import resnet_helpers as rh
import torch
from helpers import assert_close

from cnnumpy import nn, optim
from cnnumpy.inspect import check_model_gradients, numerical_gradient_array, summary
from cnnumpy.models import MODELS, build_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from cnnumpy.onnx import UnsupportedOperatorError, export, load  # noqa: E402

T = torch.nn
TOL = 1e-9  # float64, relative to the largest value compared
helper, TP = onnx.helper, onnx.TensorProto


def randomize_batch_norms(model: nn.Module, rng: np.random.Generator) -> nn.Module:
    """Non-trivial batch-norm statistics and affine parameters, and no all-zero parameter."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            c = m.num_features
            m.running_mean = rng.normal(0, 0.2, c)
            m.running_var = rng.uniform(0.5, 1.5, c)
            m.weight.data[...] = rng.uniform(0.5, 1.5, c)
            m.bias.data[...] = rng.normal(0, 0.2, c)
    for p in model.parameters():
        if not p.data.any():
            p.data[...] = rng.normal(0, 0.1, p.shape)
    return model


# ---------------------------------------------------------------- round trips of the zoo


def _imported_grad(original: nn.Module, key: str, imported_grad: np.ndarray) -> np.ndarray:
    """The imported parameter's gradient in the original's layout: a TableConv2d comes back as
    a full convolution, whose connected kernels are the table's."""
    layer = original
    for part in key.split(".")[:-1]:
        layer = getattr(layer, part)
    if isinstance(layer, nn.TableConv2d) and key.endswith("weight"):
        return imported_grad[layer.out_index, layer.in_index]
    return imported_grad.reshape(getattr(layer, key.split(".")[-1]).shape)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_round_trip_gives_the_same_outputs_and_gradients(name):
    size, channels = MODELS[name].tiny_size, 1 if name.startswith("lenet") else 3
    original = build_model(name, tiny=True, input_size=size, in_channels=channels,
                           rng=np.random.default_rng(0)).to(np.float64)  # fmt: skip
    randomize_batch_norms(original, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((3, channels, size, size))
    imported = load(export(original.eval(), x[:1]))
    assert set(imported.state_dict()) == set(original.state_dict())
    noisy = any(isinstance(m, nn.Dropout | nn.NoisyReLU) for m in original.modules())
    for training in (False,) if noisy else (False, True):
        original.train(training)
        imported.train(training)
        out = original(x)
        assert_close(imported(x), out, rtol=TOL, name=f"{name} output")
        dout = np.random.default_rng(3).standard_normal(out.shape)
        original.zero_grad()
        imported.zero_grad()
        assert_close(imported.backward(dout), original.backward(dout), rtol=TOL, name="dx")
        grads = dict(imported.named_parameters())
        for key, p in original.named_parameters():
            if p.requires_grad:
                got = _imported_grad(original, key, grads[key].grad)
                assert_close(got, p.grad, rtol=TOL, atol=1e-12, name=f"{name} d{key}")


def test_layer_and_group_norm_round_trip_with_the_same_outputs_and_gradients():
    rng = np.random.default_rng(4)
    original = nn.Sequential(
        nn.Conv2d(2, 4, 3, rng=rng), nn.GroupNorm(2, 4), nn.ReLU(), nn.Flatten(),
        nn.LayerNorm(36), nn.Linear(36, 3, rng=rng),
    ).to(np.float64)  # fmt: skip
    for p in original.parameters():  # away from the initial ones and zeros
        p.data[...] = rng.standard_normal(p.shape)
    x = rng.standard_normal((3, 2, 5, 5))
    imported = load(export(original, x[:1]))
    assert set(imported.state_dict()) == set(original.state_dict())
    out = original(x)
    assert_close(imported(x), out, rtol=TOL, name="output")
    dout = rng.standard_normal(out.shape)
    original.zero_grad()
    imported.zero_grad()
    assert_close(imported.backward(dout), original.backward(dout), rtol=TOL, name="dx")
    grads = dict(imported.named_parameters())
    for key, p in original.named_parameters():
        assert_close(grads[key].grad.reshape(p.shape), p.grad, rtol=TOL, name=f"d{key}")


# ---------------------------------------------------------------- PyTorch twins


class Inception(T.Module):
    """GoogLeNet's module: 1x1, 1x1-3x3, 3x3 max pool-1x1, 3x3 average pool-1x1, joined."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.b1 = T.Sequential(T.Conv2d(c, 2, 1), T.ReLU())
        self.b2 = T.Sequential(T.Conv2d(c, 2, 1), T.ReLU(), T.Conv2d(2, 3, 3, padding=1), T.ReLU())
        self.b3 = T.Sequential(T.MaxPool2d(3, 1, 1), T.Conv2d(c, 2, 1), T.ReLU())
        self.b4 = T.Sequential(T.AvgPool2d(3, 1, 1, count_include_pad=False), T.Conv2d(c, 1, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def _alexnet_like() -> T.Module:
    return T.Sequential(
        T.Conv2d(3, 4, 5, stride=2, padding=2), T.ReLU(), T.LocalResponseNorm(5, 1e-2, 0.75, 2.0),
        T.MaxPool2d(3, 2), T.Conv2d(4, 8, 3, padding=1, groups=2), T.ReLU(),
        T.LocalResponseNorm(4, 0.1, 0.75, 1.0), T.MaxPool2d(3, 2, ceil_mode=True), T.Flatten(),
        T.Dropout(0.5), T.Linear(8 * 2 * 2, 6), T.ReLU(), T.Linear(6, 5),
    )  # fmt: skip


def _lenet5_modern() -> T.Module:
    return T.Sequential(
        T.Conv2d(1, 2, 5, padding=2), T.BatchNorm2d(2), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(2, 3, 5), T.BatchNorm2d(3), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(3, 4, 5), T.ReLU(), T.Flatten(), T.Linear(4, 5), T.BatchNorm1d(5), T.ReLU(),
        T.Linear(5, 10),
    )  # fmt: skip


def _googlenet_like() -> T.Module:
    return T.Sequential(
        T.Conv2d(3, 4, 3, padding=1), T.ReLU(), Inception(4), T.ReLU(), Inception(8),
        T.AdaptiveAvgPool2d(1), T.Flatten(), T.Linear(8, 10),
    )  # fmt: skip


TWINS = {  # name: (builder, input shape)
    "resnet20-like": (lambda: rh.resnet((3, 3, 3), (2, 4, 4), kind="A"), (3, 8, 8)),
    "alexnet-like": (_alexnet_like, (3, 17, 17)),
    "lenet5-modern": (_lenet5_modern, (1, 28, 28)),
    "googlenet-like": (_googlenet_like, (3, 8, 8)),
}


@pytest.fixture(scope="module")
def twins() -> dict[str, tuple[T.Module, object, tuple[int, ...]]]:
    """Each twin with random batch-norm state, and its ONNX export (batch axis dynamic)."""
    pytest.importorskip("onnxscript")  # torch.onnx.export's exporter
    torch.manual_seed(0)
    exported = {}
    for name, (build, shape) in TWINS.items():
        net = build().eval()
        for m in net.modules():
            if isinstance(m, T.BatchNorm1d | T.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.3, 0.3)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
            # optimize=False keeps batch norm apart from the convolutions, as the twin has it.
            program = torch.onnx.export(
                net, (torch.zeros(2, *shape),), dynamo=True, optimize=False, verbose=False,
                input_names=["input"], output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("N", min=1)},),
            )  # fmt: skip
            logging.disable(logging.NOTSET)
        exported[name] = (net, program.model_proto, shape)
    return exported


@pytest.mark.parametrize("name", list(TWINS))
def test_torch_exports_import_with_torchs_outputs_and_gradients(twins, name):
    net, proto, shape = twins[name]
    model = load(proto, dtype=np.float64)
    net = net.double()
    state = net.state_dict()
    assert set(state) <= set(model.state_dict()), "the file's names are the state_dict keys"
    for key, value in state.items():
        assert_close(model.state_dict()[key], value.numpy(), rtol=1e-7, name=key)
    for n in (1, 3):
        x = torch.randn(n, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
        x.requires_grad_(True)
        out = net(x)
        dout = torch.randn_like(out)
        net.zero_grad()
        out.backward(dout)
        model.zero_grad()
        assert_close(model(x.detach().numpy()), out.detach().numpy(), rtol=TOL, name="output")
        assert_close(model.backward(dout.numpy()), x.grad.numpy(), rtol=TOL, name="dx")
        grads = dict(model.named_parameters())
        for key, p in net.named_parameters():
            assert_close(grads[key].grad, p.grad.numpy(), rtol=TOL, name=f"d{key}")


def test_an_imported_model_trains_like_its_twin(twins):
    """Batch statistics in training mode, and one SGD step, as PyTorch takes them."""
    net, proto, shape = twins["lenet5-modern"]
    model = load(proto, dtype=np.float64).train()
    net = net.double().train()
    x = np.random.default_rng(0).standard_normal((4, *shape))
    y = np.array([0, 3, 3, 9])
    ours, theirs = optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(net.parameters(), 0.1)
    loss, torch_loss = nn.CrossEntropyLoss(), T.CrossEntropyLoss()
    theirs.zero_grad()  # the twin is shared with the tests before
    for _ in range(2):
        value = loss(model(x), y)
        model.backward(loss.backward())
        ours.step()
        ours.zero_grad()
        expected = torch_loss(net(torch.tensor(x)), torch.tensor(y))
        expected.backward()
        theirs.step()
        theirs.zero_grad()
        assert value == pytest.approx(expected.item(), rel=1e-10)
    for key, value in net.state_dict().items():
        assert_close(model.state_dict()[key], value.numpy(), rtol=1e-9, name=key)


def test_an_imported_model_gradchecks_and_summarises(twins):
    _, proto, shape = twins["googlenet-like"]
    model = load(proto, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, *shape))
    errors = check_model_gradients(model, nn.CrossEntropyLoss(), x, np.array([1, 7]))
    assert max(errors.values()) < 1e-6, errors
    rows = summary(model, shape)
    convs = [r for r in rows if r.kind == "Conv2d"]
    assert [r.name for r in convs[:2]] == ["0", "2.b1.0"]
    assert sum(r.parameters for r in rows) == sum(p.data.size for p in model.parameters())


def test_an_imported_torch_model_exports_again(twins):
    """PyTorch's LRN arithmetic, its shape computations and its layers, written back by
    ``export`` and run in ONNX Runtime, give PyTorch's outputs for any batch size."""
    net, proto, shape = twins["alexnet-like"]
    net = copy.deepcopy(net).float().eval()
    again = export(load(proto), np.zeros((1, *shape), np.float32))
    session = ort.InferenceSession(again.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    expected = net(torch.tensor(x)).detach().numpy()
    assert_close(session.run(None, {"input": x})[0], expected, rtol=1e-5, name="output")


# ---------------------------------------------------------------- one operator at a time


def _single_node_model(op, inputs, weights, attrs, rng):
    """A graph of one ``op`` node on data ``inputs`` (name -> shape) and ``weights`` (name ->
    array: initializers, in the node's input order after the data)."""
    values = [helper.make_tensor_value_info(k, TP.FLOAT, list(s)) for k, s in inputs.items()]
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in weights.items()]
    node = helper.make_node(op, [*inputs, *weights], ["out"], name=f"the_{op}", **attrs)
    out = helper.make_tensor_value_info("out", TP.FLOAT, None)
    graph = helper.make_graph([node], op, values, [out], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def w(*shape, positive=False, seed=0):
    """A float32 weight of ``shape`` drawn from a fixed generator."""
    a = np.random.default_rng([seed, *shape]).standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.5 if positive else a


def ints(*values):
    return np.array(values, dtype=np.int64)


# name: (op, data inputs, weights and static inputs, attributes)
OPS = {
    "ConvTranspose": ("ConvTranspose", {"x": (2, 4, 3, 3)}, {"w": w(4, 3, 3, 3), "b": w(6)},
                      {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1],
                       "output_padding": [1, 1]}),
    "Conv-same-even": ("Conv", {"x": (2, 2, 5, 5)}, {"w": w(3, 2, 2, 2)},
                       {"auto_pad": "SAME_UPPER"}),
    "Gemm-transposed": ("Gemm", {"x": (3, 4)}, {"B": w(4, 5), "C": w(1, 5)},
                        {"alpha": 0.5, "beta": 2.0}),
    "MatMul-weight": ("MatMul", {"x": (3, 4)}, {"W": w(4, 5)}, {}),
    "MatMul-tensors": ("MatMul", {"a": (2, 3, 4), "b": (4, 2)}, {}, {}),
    "PRelu": ("PRelu", {"x": (2, 3, 4, 4)}, {"slope": w(3, 1, 1)}, {}),
    "LeakyRelu": ("LeakyRelu", {"x": (3, 5)}, {}, {"alpha": 0.2}),
    "Elu": ("Elu", {"x": (3, 5)}, {}, {"alpha": 0.7}),
    "Sigmoid": ("Sigmoid", {"x": (3, 5)}, {}, {}),
    "Softmax": ("Softmax", {"x": (2, 3, 4)}, {}, {"axis": 1}),
    "LogSoftmax": ("LogSoftmax", {"x": (3, 5)}, {}, {}),
    "BatchNorm-2d": ("BatchNormalization", {"x": (4, 3)},
                     {"s": w(3), "b": w(3, seed=1), "m": w(3, seed=2),
                      "v": w(3, positive=True)}, {}),
    "AveragePool-3d": ("AveragePool", {"x": (2, 1, 4, 3, 3)}, {},
                       {"kernel_shape": [3, 1, 1], "pads": [1, 0, 0, 1, 0, 0],
                        "count_include_pad": 1}),
    "MaxPool-ceil": ("MaxPool", {"x": (2, 2, 5, 5)}, {},
                     {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    "GlobalAveragePool": ("GlobalAveragePool", {"x": (2, 3, 4, 5)}, {}, {}),
    "Add-broadcast": ("Add", {"a": (2, 3, 4), "b": (3, 1)}, {}, {}),
    "Sub-weight": ("Sub", {"a": (2, 3)}, {"b": w(3)}, {}),
    "Mul-tensors": ("Mul", {"a": (2, 3), "b": (2, 3)}, {}, {}),
    "Div": ("Div", {"a": (2, 3)}, {"b": w(2, 3, positive=True)}, {}),
    "Pow": ("Pow", {"a": (2, 3)}, {"e": np.float32(-0.75)}, {}),
    "ReduceSum": ("ReduceSum", {"x": (2, 3, 4)}, {"axes": ints(1)}, {"keepdims": 0}),
    "ReduceMean": ("ReduceMean", {"x": (2, 3, 4)}, {}, {"axes": [0, 2]}),
    "Concat": ("Concat", {"a": (2, 3, 2), "b": (2, 1, 2)}, {}, {"axis": 1}),
    "Reshape": ("Reshape", {"x": (2, 3, 4)}, {"shape": ints(0, -1, 2)}, {}),
    "Flatten-axis2": ("Flatten", {"x": (2, 3, 4, 2)}, {}, {"axis": 2}),
    "Pad-spatial": ("Pad", {"x": (2, 2, 3, 3)}, {"pads": ints(0, 0, 1, 2, 0, 0, 3, 0),
                                                 "value": np.float32(-0.5)}, {}),
    "Pad-channels": ("Pad", {"x": (2, 2, 3, 3)}, {"pads": ints(0, 1, 0, 0, 0, 2, 0, 0)}, {}),
    "Slice-reversed": ("Slice", {"x": (2, 5, 4)}, {"starts": ints(-1, 1), "ends": ints(-9, 9),
                                                   "axes": ints(1, 2), "steps": ints(-2, 2)}, {}),
    "Squeeze": ("Squeeze", {"x": (2, 1, 3, 1)}, {"axes": ints(1)}, {}),
    "Unsqueeze": ("Unsqueeze", {"x": (2, 3)}, {"axes": ints(0, 3)}, {}),
    "Expand": ("Expand", {"x": (3, 1)}, {"shape": ints(2, 3, 4)}, {}),
    "Transpose": ("Transpose", {"x": (2, 3, 4)}, {}, {"perm": [2, 0, 1]}),
    "Dropout": ("Dropout", {"x": (3, 4)}, {}, {}),
    "Identity": ("Identity", {"x": (3, 4)}, {}, {}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OPS))
def test_each_operator_matches_onnxruntime_and_numerical_gradients(case):
    op, inputs, weights, attrs = OPS[case]
    proto = _single_node_model(op, inputs, weights, attrs, None)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in inputs.values()]
    if op == "Pow":
        xs = [np.abs(x) + 0.5 for x in xs]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, dict(zip(inputs, xs, strict=True)))[0]
    assert_close(load(proto)(*xs), expected, rtol=1e-5, name=f"{case} output")
    model = load(proto, dtype=np.float64)
    xs = [x.astype(np.float64) for x in xs]
    dout = rng.standard_normal(np.shape(model(*xs)))
    model.zero_grad()
    dxs = model.backward(dout)
    dxs = dxs if isinstance(dxs, tuple) else (dxs,)
    arrays = [*zip(inputs, xs, strict=True), *((k, p.data) for k, p in model.named_parameters())]
    analytic = [*dxs, *(p.grad for p in model.parameters())]
    for (name, array), grad in zip(arrays, analytic, strict=True):
        numeric = numerical_gradient_array(lambda: model(*xs), array, dout)
        assert_close(grad, numeric, rtol=1e-7, atol=1e-9, name=f"{case} d{name}")


def test_weights_copied_by_identity_nodes_are_weights_of_their_own():
    """PyTorch's TorchScript exporter stores equal tensors once (a fresh batch norm's bias
    and running mean are both zeros) and copies them with Identity nodes."""
    nodes = [helper.make_node("Identity", ["bn.bias"], ["bn.running_mean"]),
             helper.make_node("Identity", ["bn.weight"], ["bn.running_var"]),
             helper.make_node("BatchNormalization", ["x", "bn.weight", "bn.bias",
                                                     "bn.running_mean", "bn.running_var"],
                              ["y"])]  # fmt: skip
    inits = [onnx.numpy_helper.from_array(w(3, positive=True), "bn.weight"),
             onnx.numpy_helper.from_array(w(3, seed=1), "bn.bias")]  # fmt: skip
    x_info, y_info = (helper.make_tensor_value_info(n, TP.FLOAT, [2, 3]) for n in "xy")
    graph = helper.make_graph(nodes, "bn", [x_info], [y_info], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = load(proto)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(model(x), session.run(None, {"x": x})[0], rtol=1e-5, name="output")
    assert isinstance(model.bn, nn.BatchNorm1d)
    model.bn.running_mean += 1.0  # a copy: the bias stays as it was
    np.testing.assert_array_equal(model.bn.bias.data, w(3, seed=1))


def test_an_even_onnx_lrn_follows_the_onnx_definition():
    """ONNX's window for channel c is c - floor((size-1)/2) .. c + ceil((size-1)/2); written
    out here as a loop (ONNX Runtime refuses even sizes, so it cannot be the reference)."""
    size, alpha, beta, k = 4, 0.3, 0.7, 1.2
    node = helper.make_node("LRN", ["x"], ["out"], size=size, alpha=alpha, beta=beta, bias=k)
    graph = helper.make_graph(
        [node], "lrn", [helper.make_tensor_value_info("x", TP.DOUBLE, [2, 6, 2, 2])],
        [helper.make_tensor_value_info("out", TP.DOUBLE, [2, 6, 2, 2])],
    )  # fmt: skip
    model = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    x = np.random.default_rng(0).standard_normal((2, 6, 2, 2))
    expected = np.empty_like(x)
    for c in range(6):
        lo, hi = max(0, c - (size - 1) // 2), min(5, c + -(-(size - 1) // 2))
        square_sum = (x[:, lo : hi + 1] ** 2).sum(axis=1)
        expected[:, c] = x[:, c] / (k + alpha / size * square_sum) ** beta
    assert_close(model(x), expected, rtol=1e-12, name="LRN size 4")


# ---------------------------------------------------------------- the Graph module itself


def _fan_out_graph(rng):
    """``relu(conv_a(x) + conv_b(x)) `` with ``x`` read by two nodes, and a dead branch."""
    conv_a = nn.Conv2d(2, 3, 3, padding=1, rng=rng).to(np.float64)
    conv_b = nn.Conv2d(2, 3, 1, rng=rng).to(np.float64)
    from cnnumpy.onnx.arith import Add

    nodes = [("a", conv_a, ["x"], "ha"), ("b", conv_b, ["x"], "hb"),
             ("dead", nn.Tanh(), ["ha"], "unused"), ("add", Add(), ["ha", "hb"], "sum"),
             ("relu", nn.ReLU(), ["sum"], "y")]  # fmt: skip
    return nn.Graph(["x"], nodes, ["y"]), conv_a, conv_b


def test_graph_sums_the_gradients_of_a_tensor_read_twice(rng):
    graph, conv_a, conv_b = _fan_out_graph(rng)
    x = rng.standard_normal((2, 2, 4, 4))
    tx = torch.tensor(x, requires_grad=True)
    ta, tb = (T.Conv2d(2, 3, k, padding=p).double() for k, p in ((3, 1), (1, 0)))
    with torch.no_grad():
        for twin, ours in ((ta, conv_a), (tb, conv_b)):
            twin.weight.copy_(torch.tensor(ours.weight.data))
            twin.bias.copy_(torch.tensor(ours.bias.data))
    out = torch.relu(ta(tx) + tb(tx))
    dout = rng.standard_normal(out.shape)
    out.backward(torch.tensor(dout))
    assert_close(graph(x), out.detach().numpy(), rtol=TOL, name="output")
    assert_close(graph.backward(dout), tx.grad.numpy(), rtol=TOL, name="dx")
    assert_close(conv_a.weight.grad, ta.weight.grad.numpy(), rtol=TOL, name="dweight a")
    assert_close(conv_b.bias.grad, tb.bias.grad.numpy(), rtol=TOL, name="dbias b")
    assert graph.dead._saved is not None, "a node that reaches no output gets no backward"


def test_graph_refuses_a_second_backward_before_any_gradient_changes(rng):
    graph, conv_a, _ = _fan_out_graph(rng)
    x = rng.standard_normal((2, 2, 4, 4))
    with pytest.raises(RuntimeError, match="Graph.backward needs a forward first"):
        graph.backward(np.ones((2, 3, 4, 4)))
    dout = np.ones_like(graph(x))
    graph.backward(dout)
    grads = [p.grad.copy() for p in graph.parameters()]
    with pytest.raises(RuntimeError, match="needs a forward first"):
        graph.backward(dout)
    graph(x)
    conv_a.backward(np.ones((2, 3, 4, 4)))  # one node's state taken outside the graph
    grads = [p.grad.copy() for p in graph.parameters()]
    with pytest.raises(RuntimeError, match=r"'a' \(Conv2d\) holds nothing"):
        graph.backward(dout)
    assert all(np.array_equal(p.grad, g) for p, g in zip(graph.parameters(), grads, strict=True))


def test_graph_rejects_malformed_definitions():
    relu = nn.ReLU
    with pytest.raises(ValueError, match="topological order"):
        nn.Graph(["x"], [("a", relu(), ["h"], "y"), ("b", relu(), ["x"], "h")], ["y"])
    with pytest.raises(ValueError, match="attribute of Graph"):
        nn.Graph(["x"], [("forward", relu(), ["x"], "y")], ["y"])
    with pytest.raises(ValueError, match="redefines tensor 'x'"):
        nn.Graph(["x"], [("a", relu(), ["x"], "x")], ["x"])
    with pytest.raises(ValueError, match="not defined"):
        nn.Graph(["x"], [("a", relu(), ["x"], "y")], ["z"])
    clash = {"lin.weight": nn.Parameter(np.zeros((2, 2)))}
    with pytest.raises(ValueError, match="keys clash: lin.weight"):
        nn.Graph(["x"], [("lin", nn.Linear(2, 2), ["x"], "y")], ["y"], parameters=clash)


# ---------------------------------------------------------------- files that cannot load


def test_unsupported_operators_are_listed_with_their_nodes():
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="erf1"),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Erf", ["b"], ["c"], name="erf2"),
             helper.make_node("Gelu", ["c"], ["d"], name="gelu", domain="com.example")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("d", TP.FLOAT, [1, 2])])  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    proto = helper.make_model(graph, opset_imports=opsets)
    with pytest.raises(UnsupportedOperatorError) as info:
        load(proto)
    message = str(info.value)
    assert "Erf (nodes 'erf1', 'erf2')" in message
    assert "com.example::Gelu (nodes 'gelu')" in message
    assert "Relu" not in message.split("Supported")[0]


def test_unsupported_settings_name_the_node():
    proto = _single_node_model("Conv", {"x": (1, 1, 4, 4)}, {"w": w(1, 1, 3, 3)},
                               {"pads": [0, 0, 1, 1], "strides": [2, 2]}, None)  # fmt: skip
    with pytest.raises(UnsupportedOperatorError, match=r"Conv node 'the_Conv': asymmetric pads"):
        load(proto)
