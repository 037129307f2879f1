"""Checkpoint files: round trips, architecture checks, corrupt files, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import checkpoint as ck
from cnnumpy import nn, optim
from cnnumpy.checkpoint import CheckpointError, architecture_hash, load_checkpoint, save_checkpoint


def mlp(hidden: int = 32, seed: int = 0, dtype=np.float64) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(64, hidden, rng=rng), nn.Tanh(), nn.Linear(hidden, 10, rng=rng)
    ).to(dtype)


def trained(model: nn.Module, steps: int = 3) -> optim.Adam:
    """An Adam optimiser that has taken ``steps`` steps on random data, so it has state."""
    opt = optim.Adam(model.parameters(), lr=1e-2)
    data_rng = np.random.default_rng(1)
    loss = nn.CrossEntropyLoss()
    for _ in range(steps):
        x = data_rng.standard_normal((8, 64))
        loss(model(x), data_rng.integers(0, 10, 8))
        model.backward(loss.backward())
        opt.step()
        opt.zero_grad()
    return opt


def save(path: Path, model: nn.Module, optimizer=None, **kwargs) -> None:
    args = {"epoch": 3, "history": {"loss": [2.0, 1.5]}, "rng_states": {}} | kwargs
    save_checkpoint(path, model=model, optimizer=optimizer, **args)


def test_round_trip_restores_weights_optimizer_and_rng_states(tmp_path):
    model = mlp()
    opt = trained(model)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    sched.step()
    shuffle = np.random.default_rng(7)
    shuffle.permutation(100)  # advance it, so the saved state is not the seed's
    mt = np.random.Generator(np.random.MT19937(3))  # a state holding an array (the key)
    mt.random(5)
    history = {"loss": [2.3, 1.25], "val_acc": [0.5]}
    path = tmp_path / "ck.npz"
    save_checkpoint(
        path, model=model, optimizer=opt, scheduler=sched, epoch=4, history=history,
        rng_states={"shuffle": shuffle, "mt": mt}, extra={"note": "hi"}, model_name="tiny",
        normalization={"mean": [4.5], "std": [6.0]}, best_state=model.state_dict(),
    )  # fmt: skip

    model2 = mlp(seed=99)
    opt2 = optim.Adam(model2.parameters(), lr=1.0)
    sched2 = optim.StepLR(opt2, step_size=5)
    got = load_checkpoint(path, model2, opt2, scheduler=sched2)
    for key, value in model.state_dict().items():
        assert np.array_equal(model2.state_dict()[key], value), key
        assert np.array_equal(got["best_state"][key], value), key
    for key, value in opt.state_dict().items():
        assert np.array_equal(opt2.state_dict()[key], value), key
    assert opt2.lr == opt.lr
    for key, value in sched.state_dict().items():
        assert np.array_equal(sched2.state_dict()[key], value), key
    assert got["epoch"] == 4 and got["history"] == history and got["extra"] == {"note": "hi"}
    assert got["model_name"] == "tiny" and got["model_class"] == "Sequential"
    assert got["normalization"] == {"mean": [4.5], "std": [6.0]}
    assert got["arch_hash"] == architecture_hash(model)
    for name, gen in (("shuffle", shuffle), ("mt", mt)):
        fresh = np.random.Generator(type(gen.bit_generator)(0))
        ck.set_rng_state(fresh, got["rng_states"][name], name)
        assert np.array_equal(fresh.random(10), gen.random(10)), name


def test_file_is_a_plain_npz_with_json_meta(tmp_path):
    model = mlp()
    path = tmp_path / "ck.npz"
    save(path, model, trained(model))
    with np.load(path, allow_pickle=False) as npz:
        names = set(npz.files)
        meta = npz["meta"]
        assert meta.shape == () and meta.dtype.kind == "U"
        assert np.array_equal(npz["model/0.weight"], model.state_dict()["0.weight"])
    expected = {"model/0.weight", "model/0.bias", "model/2.weight", "optim/lr", "optim/exp_avg.0"}
    assert expected <= names
    info = json.loads(str(meta))
    assert info["format"] == "cnnumpy-checkpoint" and info["version"] == 2
    assert info["optimizer_class"] == "Adam" and info["epoch"] == 3


def test_architecture_hash_depends_on_keys_shapes_dtypes_and_class():
    base = architecture_hash(mlp())
    assert architecture_hash(mlp(seed=5)) == base, "weights must not change the hash"
    assert architecture_hash(mlp(hidden=16)) != base
    assert architecture_hash(mlp(dtype=np.float32)) != base

    class Other(nn.Sequential):
        pass

    rng = np.random.default_rng(0)
    other = Other(nn.Linear(64, 32, rng=rng), nn.Tanh(), nn.Linear(32, 10, rng=rng)).to(np.float64)
    assert architecture_hash(other) != base


def test_loading_into_another_architecture_names_models_keys_and_shapes(tmp_path):
    path = tmp_path / "ck.npz"
    save(path, mlp(hidden=32), model_name="wide")
    narrow = mlp(hidden=16, seed=3)
    before = narrow.state_dict()
    with pytest.raises(ValueError) as info:
        load_checkpoint(path, narrow)
    msg = str(info.value)
    assert "'wide'" in msg and "differs from Sequential" in msg and str(path) in msg
    assert "0.weight (checkpoint (32, 64), model (16, 64))" in msg
    assert "2.weight (checkpoint (10, 32), model (10, 16))" in msg
    for key, value in before.items():
        assert np.array_equal(narrow.state_dict()[key], value), "a failed load changed " + key

    deeper = nn.Sequential(*mlp(), nn.Tanh(), nn.Linear(10, 10)).to(np.float64)
    with pytest.raises(ValueError, match="missing keys: 4.weight, 4.bias"):
        load_checkpoint(path, deeper)


def test_another_dtype_is_refused_even_non_strict(tmp_path):
    path = tmp_path / "ck.npz"
    save(path, mlp())
    single = mlp(dtype=np.float32, seed=4)
    before = single.state_dict()
    with pytest.raises(ValueError, match=r"dtype mismatches: 0.weight \(checkpoint float64"):
        load_checkpoint(path, single)
    with pytest.raises(ValueError, match=r"float64, model float32\).*weights are never cast"):
        load_checkpoint(path, single, strict=False)
    for key, value in before.items():
        assert np.array_equal(single.state_dict()[key], value), "a refused load changed " + key


def test_same_layout_other_class_needs_strict_false(tmp_path):
    class Other(nn.Sequential):
        pass

    path = tmp_path / "ck.npz"
    source = mlp()
    save(path, source)
    rng = np.random.default_rng(4)
    other = Other(nn.Linear(64, 32, rng=rng), nn.Tanh(), nn.Linear(32, 10, rng=rng)).to(np.float64)
    with pytest.raises(ValueError, match="agree but the model classes differ"):
        load_checkpoint(path, other)
    load_checkpoint(path, other, strict=False)
    assert np.array_equal(other.state_dict()["0.weight"], source.state_dict()["0.weight"])


def test_missing_pieces(tmp_path):
    path = tmp_path / "ck.npz"
    model = mlp()
    save(path, model)
    with pytest.raises(ValueError, match="holds no optimiser state"):
        load_checkpoint(path, model, optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="object array"):
        save(path, model, best_state={"w": np.array([None])})


class _Boom:
    """Unpickling this creates a marker file: the proof that a loader unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _corrupt(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "flipped":
        mid = len(raw) // 2
        path.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid : mid + 16]) + raw[mid + 16 :])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "pickled":
        obj = np.empty(1, dtype=object)
        obj[0] = _Boom(str(path) + ".unpickled")
        with open(path, "wb") as f:
            np.savez(f, meta=np.array("{}"), **{"model/0.weight": obj})


CORRUPTIONS = {
    "truncated": "is unreadable or corrupt",
    "flipped": "is unreadable or corrupt",
    "garbage": r"is not a cnnumpy checkpoint \(it is unrecognised binary data, not an .npz",
    "empty": r"is not a cnnumpy checkpoint \(it is an empty file, not an .npz archive\)",
    "pickled": "entry 'model/0.weight' is an object array",
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_file_raises_a_clear_error(tmp_path, how):
    path = tmp_path / "ck.npz"
    model = mlp(hidden=64)
    save(path, model)
    _corrupt(path, how)
    with pytest.raises(CheckpointError, match=CORRUPTIONS[how]) as info:
        load_checkpoint(path, model)
    assert str(path) in str(info.value)
    error = info.value
    assert error.__cause__ is None, "no raw traceback"
    assert error.__context__ is None or error.__suppress_context__, "no raw traceback"
    assert "Error:" not in str(error).split("(")[0], "no exception class leads the message"
    assert isinstance(info.value, ValueError)
    assert not Path(str(path) + ".unpickled").exists(), "the loader unpickled an object"


def test_npz_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(CheckpointError, match="not a cnnumpy checkpoint"):
        load_checkpoint(path)
    np.savez(path, meta=np.array(json.dumps({"format": "cnnumpy-checkpoint", "version": 99})))
    with pytest.raises(CheckpointError, match="format version 99; this cnnumpy reads versions 1 "):
        load_checkpoint(path)


def test_callback_states_round_trip_as_arrays_and_json(tmp_path):
    path = tmp_path / "ck.npz"
    model = mlp()
    kept = {"state." + key: value for key, value in mlp(seed=5).state_dict().items()}
    states = {
        "BestModel": {"best_score": 0.5, "best_epoch": 3, **kept},
        "Mine": {"count": 4, "name": "x", "nothing": None},
        "OnlyArrays": {"lr": np.array(0.25)},
    }
    save(path, model, callback_states=states)
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(npz["cb/BestModel/state.0.weight"], kept["state.0.weight"])
        assert np.array_equal(npz["cb/OnlyArrays/lr"], 0.25)
        meta = json.loads(str(npz["meta"]))
    assert meta["callbacks"]["Mine"] == {"count": 4, "name": "x", "nothing": None}
    got = load_checkpoint(path)["callback_states"]
    assert sorted(got) == ["BestModel", "Mine", "OnlyArrays"]
    assert got["BestModel"]["best_score"] == 0.5 and got["BestModel"]["best_epoch"] == 3
    assert np.array_equal(got["BestModel"]["state.0.weight"], kept["state.0.weight"])
    assert got["Mine"] == states["Mine"] and float(got["OnlyArrays"]["lr"]) == 0.25
    with pytest.raises(ValueError, match="without '/'"):
        save(path, mlp(), callback_states={"a/b": {"x": 1}})


def test_version_1_files_are_read(tmp_path):
    """The layout version 1 had: the same groups, no callback states; the best score and
    epoch in ``extra``."""
    path = tmp_path / "ck.npz"
    model = mlp()
    save(path, model, best_state=model.state_dict(), extra={"best_val_acc": 0.5, "best_epoch": 2})
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    del meta["callbacks"]
    arrays["meta"] = np.array(json.dumps(meta | {"version": 1}))
    np.savez(path, **arrays)
    got = load_checkpoint(path, mlp(seed=3))
    assert got["version"] == 1 and got["callback_states"] == {}
    assert np.array_equal(got["best_state"]["0.weight"], model.state_dict()["0.weight"])


def test_atomic_write_leaves_no_temporaries_and_syncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "ck.npz"
    save(path, mlp())
    save(path, mlp(seed=1))  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]
    assert len(synced) == 4, "file and directory fsync'ed on each write"


@pytest.mark.parametrize("stage", ["savez", "replace"])
def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch, stage):
    path = tmp_path / "ck.npz"
    old = mlp()
    save(path, old)
    before = path.read_bytes()

    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 partial archive")
        raise OSError("disk full")

    def no_replace(src, dst):
        raise OSError("replace failed")

    if stage == "savez":
        monkeypatch.setattr(ck.np, "savez", half_written)
    else:
        monkeypatch.setattr(ck.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk full|replace failed"):
        save(path, mlp(seed=1))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"], "temporary file left behind"
    restored = mlp(seed=2)
    load_checkpoint(path, restored)
    assert np.array_equal(restored.state_dict()["0.weight"], old.state_dict()["0.weight"])


def test_remove_stale_temporaries(tmp_path):
    target = tmp_path / "last.npz"
    stale = tmp_path / ".last.npz.abc123.tmp"
    stale.write_bytes(b"half")
    keep = tmp_path / ".other.tmp"
    keep.write_bytes(b"x")
    assert ck.remove_stale_temporaries(target) == [stale]
    assert not stale.exists() and keep.exists()


def test_rng_state_of_another_kind_is_refused():
    state = ck.rng_state(np.random.default_rng(0))
    with pytest.raises(ValueError, match="'PCG64', the generator is MT19937"):
        ck.set_rng_state(np.random.Generator(np.random.MT19937(0)), state, "dropout")


@pytest.mark.parametrize("kind", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_every_bit_generator_round_trips_and_a_bad_state_changes_nothing(tmp_path, kind):
    rng = np.random.Generator(getattr(np.random, kind)(5))
    rng.random(3)
    model = mlp()
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model=model, epoch=0, history={}, rng_states={"r": rng})
    fresh = np.random.Generator(getattr(np.random, kind)(0))
    ck.set_rng_state(fresh, load_checkpoint(path)["rng_states"]["r"], "r")
    assert np.array_equal(fresh.random(4), rng.random(4))
    state = ck.rng_state(fresh)
    inner = state["state"]
    first = next(iter(inner))
    inner[first] = -1 if isinstance(inner[first], int) else [-1] * len(inner[first])
    kept = ck.rng_state(fresh)
    with pytest.raises(ValueError, match=rf"cannot restore r: r.state.{first}"):
        ck.set_rng_state(fresh, state, "r")
    assert ck.rng_state(fresh) == kept
