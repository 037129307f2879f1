"""``cnnumpy export CHECKPOINT OUT``: a trained model as ONNX or as safetensors weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .. import nn
from ..checkpoint import load_checkpoint
from ..predict import rebuild_model

FORMATS = ("onnx", "safetensors")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a checkpoint's model as ONNX (or its weights as safetensors)",
        description=(
            "Rebuild the model recorded in CHECKPOINT (written by `cnnumpy train`), load its "
            "weights and write OUT: an ONNX model (standard operators, a dynamic batch axis, "
            "checked by onnx.checker) or, with --format safetensors, the state_dict as a "
            "safetensors file that safetensors.torch reads too. The model expects inputs "
            "normalised as in training; the mean and std are stored in the file's metadata."
        ),
    )
    p.add_argument("checkpoint", type=Path, help="a .npz file written by cnnumpy train")
    p.add_argument("out", type=Path, help="the file to write")
    p.add_argument(
        "--format", choices=FORMATS, default=None,
        help="output format (default: safetensors for a .safetensors OUT, else onnx)",
    )  # fmt: skip
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or newer (default 17)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = args.format or ("safetensors" if args.out.suffix == ".safetensors" else "onnx")
    model, meta, shape = model_from_checkpoint(args.checkpoint)
    metadata = {
        "model": meta["model_name"],
        "normalization": json.dumps(meta.get("normalization")),
        "input_shape": json.dumps(list(shape)),
    }
    try:
        if fmt == "onnx":
            from ..onnx import export

            dtype = model.parameters()[0].dtype if model.parameters() else np.float32
            export(model, np.zeros((1, *shape), dtype=dtype), args.out, opset=args.opset,
                   metadata=metadata)  # fmt: skip
        else:
            from ..weights import save_weights

            save_weights(model, args.out, metadata)
    except ImportError as err:  # an optional dependency: say what to install
        raise ValueError(str(err)) from None
    print(f"wrote {meta['model_name']} (epoch {meta['epoch']}) to {args.out} as {fmt}")
    return 0


def model_from_checkpoint(path: Path) -> tuple[nn.Module, dict, tuple[int, int, int]]:
    """``(model in eval mode, checkpoint metadata, input shape (C, H, W))`` for a checkpoint
    of ``cnnumpy train``, without reading its data set."""
    meta = load_checkpoint(path)
    config = meta["extra"].get("config")
    model = rebuild_model(path, config)  # refuses, saying what to record, when it cannot
    load_checkpoint(path, model)
    kwargs = config["model_kwargs"]
    return model.eval(), meta, (kwargs["in_channels"], kwargs["input_size"], kwargs["input_size"])
