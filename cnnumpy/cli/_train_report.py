"""The end of a ``cnnumpy train`` run: the test accuracy, ``result.json``, the learning curves,
and where everything went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write
from ..inspect import plot_learning_curves
from ..solver import Solver
from ..train import strict_json
from ..train.errors import RunWriteError


def report(
    solver: Solver,
    history: dict,
    data: Any,
    settings: dict[str, Any],
    out: Path,
    seconds: float,
) -> None:
    """Measure the kept model on the test set, write ``result.json`` (strict JSON: a value not
    measured, such as the best validation accuracy of a run without validation, is ``null``)
    and ``learning_curves.png``, and print the paths."""
    model, dataset, validated = settings["model"], settings["dataset"], len(data.val[1]) > 0
    test_acc = solver.check_accuracy(*data.test)
    result = {
        "model": model, "dataset": dataset, "augment": settings["augment"],
        "test_accuracy": test_acc,
        "best_val_accuracy": solver.best_val_acc, "best_epoch": solver.best_epoch,
        "epochs_run": solver.epoch, "seconds": round(seconds, 2),
    }  # fmt: skip
    if solver.trainer.changes:
        result["changes"] = solver.trainer.changes
    text = (strict_json.dumps(result, indent=2) + "\n").encode()
    try:
        atomic_write(out / "result.json", lambda f: f.write(text))
        plot = plot_learning_curves(history, out / "learning_curves.png",
                                    title=f"{model} on {dataset}",
                                    best_epoch=solver.best_epoch)  # fmt: skip
    except OSError as err:
        raise RunWriteError(
            f"could not write the report in {out} ({err.strerror or err}); the checkpoints "
            f"{out / 'best.npz'} and {out / 'last.npz'} are complete"
        ) from err
    kept = "best" if validated else "last"
    print(f"test accuracy: {100 * test_acc:.2f}% ({len(data.test[1])} {dataset} images; "
          f"{kept} epoch {solver.best_epoch} of {solver.epoch}, {seconds:.1f} s)")  # fmt: skip
    print(f"checkpoint:    {out / 'best.npz'} (last epoch: {out / 'last.npz'})")
    print(f"history:       {out / 'history.json'} (per epoch: {out / 'metrics.jsonl'})")
    print(f"curves:        {plot}")
    print(f"run directory: {out}")
