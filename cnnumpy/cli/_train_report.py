"""The end of a ``cnnumpy train`` run: the test accuracy, ``result.json``, the learning curves,
and where everything went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write
from ..inspect import plot_learning_curves
from ..solver import Solver
from ..train import strict_json
from ..train.callbacks.progress import train_acc_images
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
          f"{kept} epoch {solver.best_epoch} of {solver.epoch}, "
          f"{seconds:.1f} s of training)")  # fmt: skip
    _print_train_accuracy(solver, history, len(data.train[1]))
    print(f"checkpoint:    {out / 'best.npz'} (last epoch: {out / 'last.npz'})")
    print(f"history:       {out / 'history.json'} (per epoch: {out / 'metrics.jsonl'})")
    print(f"curves:        {plot}")
    print(f"run directory: {out}")


def _print_train_accuracy(solver: Solver, history: dict, train_images: int) -> None:
    """The kept epoch's train accuracy and the subset of the training set it was measured on
    (the whole set would cost as much as an epoch to evaluate)."""
    subset, epoch = train_acc_images(solver.trainer), solver.best_epoch
    accuracies = history.get("train_acc", [])
    if subset is None or not epoch or len(accuracies) < epoch:
        return
    print(f"train accuracy: {100 * accuracies[epoch - 1]:.2f}% (epoch {epoch}, measured on a "
          f"subset of {subset} of the {train_images} training images)")  # fmt: skip
