"""The model zoo: functions that build an ``nn.Module`` for a given input and class count.

Every builder takes ``in_channels``, ``num_classes``, ``input_size`` and ``rng`` keywords, so
the command line can build any of them by name. Each registry entry also names ``tiny``
keyword arguments: a reduced width that keeps gradient checks and smoke tests fast. A name
``path/to/file.py:function`` or ``package.module:function`` is a builder of the user's own
(:mod:`.custom`; importing it executes the user's code).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import nn
from .alexnet import alexnet
from .cs231n import fully_connected_net, three_layer_convnet
from .custom import canonical_spec, is_custom, load_builder, model_label, source_sha256
from .googlenet import googlenet
from .lenet import lenet5, lenet5_modern, lenet5_preprocess, lenet_theano
from .resnet import (
    plain20,
    plain32,
    plain44,
    plain56,
    plain110,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from .resnet_imagenet import (
    plain18,
    plain34,
    plain50,
    preact_resnet18,
    resnet18,
    resnet34,
    resnet50,
)
from .vgg import vgg11, vgg13, vgg16, vgg19
from .wide_resnet import (
    preact_resnet20,
    preact_resnet56,
    preact_resnet110,
    wrn16_4,
    wrn16_8,
    wrn28_10,
)


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]
    description: str
    tiny: dict[str, Any] = field(default_factory=dict)
    input_size: int = 28  # the image size it is designed for: the command line's default
    tiny_size: int = 8  # the input size gradient checks use with the tiny widths
    # (mean, std) applied to 8-bit pixels instead of the training set's statistics, for a model
    # whose paper prescribes its input scaling.
    input_scaling: tuple[float, float] | None = None


MODELS: dict[str, ModelSpec] = {
    "convnet": ModelSpec(
        three_layer_convnet,
        "CS231n three-layer convnet: conv-relu-pool-affine-relu-affine",
        {"num_filters": 3, "filter_size": 3, "hidden_dim": 7},
    ),
    "fc": ModelSpec(
        fully_connected_net,
        "CS231n fully connected net: {affine-[bn]-relu-[dropout]} x L - affine",
        {"hidden_dims": (6, 5), "normalization": "batchnorm", "dropout": 0.2},
    ),
    "lenet5": ModelSpec(
        lenet5,
        "LeNet-5 (LeCun et al. 1998): C3 table, scaled tanh, trainable subsampling, RBF + MAP",
        input_size=32,
        tiny_size=28,
        # LeCun et al. 1998, II.B: background -0.1 and ink 1.175, so mean ~0 and variance ~1:
        # (0 - 20) / 200 = -0.1 and (255 - 20) / 200 = 1.175.
        input_scaling=(20.0, 200.0),
    ),
    "lenet5_modern": ModelSpec(
        lenet5_modern,
        "LeNet-5's shape with ReLU, max pooling, full C3, softmax; optional BN/dropout",
        {"widths": (2, 3, 4, 5)},
        input_size=32,
        tiny_size=28,
    ),
    "lenet_theano": ModelSpec(
        lenet_theano,
        "Theano tutorial LeNet: conv-pool-tanh x2, 500 tanh units, logistic regression",
        {"nkerns": (2, 3), "hidden": 5},
        tiny_size=16,
    ),
}

_CIFAR_TINY = {"widths": (2, 4, 4)}
_IMAGENET_TINY = {"widths": (2, 2, 4, 4)}
_BOTTLENECK_TINY = {"widths": (2, 2, 2, 2)}
_WRN_TINY = {"widths": (2, 4, 4), "stem_width": 2, "dropout": 0.3}
for _depth, _resnet, _plain in [
    (20, resnet20, plain20), (32, resnet32, plain32), (44, resnet44, plain44),
    (56, resnet56, plain56), (110, resnet110, plain110),
]:  # fmt: skip
    MODELS[f"resnet{_depth}"] = ModelSpec(
        _resnet,
        f"ResNet-{_depth} for CIFAR (He et al. 2015, 4.2): 16/32/64 filters, option-A shortcuts",
        _CIFAR_TINY, 32,
    )  # fmt: skip
    MODELS[f"plain{_depth}"] = ModelSpec(
        _plain, f"Plain-{_depth} for CIFAR: ResNet-{_depth} without shortcuts", _CIFAR_TINY, 32
    )
MODELS.update({
    "alexnet": ModelSpec(alexnet, "AlexNet (Krizhevsky et al. 2012) at 32x32: LRN, overlapping "
                         "pools, dropout, optional two-GPU groups",
                         {"widths": (4, 8, 8, 8, 8), "hidden": (16, 16)}, 32, 15),
    **{name: ModelSpec(build, f"{label} (Simonyan & Zisserman 2014, configuration {cfg}): "
                       "3x3 convs, optional batch norm", {"width": 0.0625, "hidden": 16}, 32, 17)
       for name, build, label, cfg in [("vgg11", vgg11, "VGG-11", "A"),
                                      ("vgg13", vgg13, "VGG-13", "B"),
                                      ("vgg16", vgg16, "VGG-16", "D"),
                                      ("vgg19", vgg19, "VGG-19", "E")]},
    "googlenet": ModelSpec(googlenet, "GoogLeNet / Inception v1 (Szegedy et al. 2014): nine "
                           "modules, 3x3 stem, no auxiliary classifiers", {"width": 0.03125}, 32),
    "resnet18": ModelSpec(resnet18, "ResNet-18 at 32x32: 3x3 stem, basic blocks [2,2,2,2]",
                          _IMAGENET_TINY, 32),
    "resnet34": ModelSpec(resnet34, "ResNet-34 at 32x32: 3x3 stem, basic blocks [3,4,6,3]",
                          _IMAGENET_TINY, 32),
    "resnet50": ModelSpec(resnet50, "ResNet-50 at 32x32: 3x3 stem, bottlenecks [3,4,6,3]",
                          _BOTTLENECK_TINY, 32),
    "plain18": ModelSpec(plain18, "Plain-18 at 32x32: ResNet-18 without shortcuts",
                         _IMAGENET_TINY, 32),
    "plain34": ModelSpec(plain34, "Plain-34 at 32x32: ResNet-34 without shortcuts",
                         _IMAGENET_TINY, 32),
    "plain50": ModelSpec(plain50, "ResNet-50's bottleneck stack without shortcuts",
                         _BOTTLENECK_TINY, 32),
    "preact_resnet18": ModelSpec(preact_resnet18, "Pre-activation ResNet-18 (He et al. 2016)",
                                 _IMAGENET_TINY, 32),
    "preact_resnet20": ModelSpec(preact_resnet20, "Pre-activation ResNet-20 for CIFAR "
                                 "(He et al. 2016): BN-ReLU-conv blocks", _CIFAR_TINY, 32),
    "preact_resnet56": ModelSpec(preact_resnet56, "Pre-activation ResNet-56 for CIFAR",
                                 _CIFAR_TINY, 32),
    "preact_resnet110": ModelSpec(preact_resnet110, "Pre-activation ResNet-110 for CIFAR",
                                  _CIFAR_TINY, 32),
    "wrn16_4": ModelSpec(wrn16_4, "Wide ResNet WRN-16-4 (Zagoruyko & Komodakis 2016)",
                         _WRN_TINY, 32),
    "wrn16_8": ModelSpec(wrn16_8, "Wide ResNet WRN-16-8", _WRN_TINY, 32),
    "wrn28_10": ModelSpec(wrn28_10, "Wide ResNet WRN-28-10", _WRN_TINY, 32),
})  # fmt: skip


def model_spec(name: str) -> ModelSpec:
    """The zoo's entry for ``name``, or for ``SOURCE:function`` one around the user's builder
    (its module imported, which executes it). ValueError for an unknown or unloadable name."""
    if is_custom(name):
        return ModelSpec(load_builder(name), f"{model_label(name)} (your own code: {name})")
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}, or "
            "path/to/file.py:function or package.module:function for a builder of your own"
        )
    return MODELS[name]


def build_model(name: str, *, tiny: bool = False, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` (or a builder of your own, see
    :func:`model_spec`); ``tiny=True`` applies its reduced widths."""
    spec = model_spec(name)
    accepted = inspect.signature(spec.build).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not open_ended:
        raise ValueError(
            f"{name} takes no argument {', '.join(map(repr, unknown))}; "
            f"its arguments are: {', '.join(accepted)}"
        )
    model = spec.build(**({**spec.tiny, **kwargs} if tiny else kwargs))
    if not isinstance(model, nn.Module):
        raise ValueError(f"{name} returned {type(model).__name__}, not a cnnumpy nn.Module")
    return model


__all__ = [
    "MODELS",
    "ModelSpec",
    "alexnet",
    "build_model",
    "canonical_spec",
    "fully_connected_net",
    "googlenet",
    "is_custom",
    "lenet5",
    "lenet5_modern",
    "lenet5_preprocess",
    "lenet_theano",
    "load_builder",
    "model_label",
    "model_spec",
    "plain110",
    "plain18",
    "plain20",
    "plain32",
    "plain34",
    "plain44",
    "plain50",
    "plain56",
    "preact_resnet110",
    "preact_resnet18",
    "preact_resnet20",
    "preact_resnet56",
    "resnet110",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "source_sha256",
    "three_layer_convnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "wrn16_4",
    "wrn16_8",
    "wrn28_10",
]
