"""Looking at a model: its layer table, a numerical check of its gradients, what a trained
network computes inside, and figures of all of it.

- :mod:`.summary`: ``summary(model, input_shape)`` -> one ``LayerRow`` per layer call, with
  output shapes, parameters, connections and multiply-adds; ``format_summary`` prints them.
- :mod:`.gradcheck`: central-difference gradients and ``check_model_gradients``.
- :mod:`.analysis`: confusion matrix, class probabilities, most confident mistakes, feature
  maps of one image, the convolutions of a model.
- :mod:`.figures`: the figures, written to files with matplotlib's object API.
- :mod:`.recording`: running a model with forward hooks on chosen layers, which the summary
  and the feature maps are built on.
"""

from .analysis import (
    MAP_LAYERS,
    FeatureMaps,
    class_probabilities,
    confusion_matrix,
    conv_layers,
    first_conv,
    most_confident_errors,
    predicts_argmin,
    record_feature_maps,
)
from .figures import (
    plot_confusion,
    plot_feature_maps,
    plot_filters,
    plot_image_grid,
    plot_learning_curves,
    plot_misclassified,
)
from .gradcheck import (
    GRAD_FLOOR,
    check_model_gradients,
    numerical_gradient,
    numerical_gradient_array,
    relative_error,
)
from .recording import is_leaf, leaf_modules, record_calls
from .summary import LayerRow, format_summary, layer_counts, summary

__all__ = [
    "GRAD_FLOOR",
    "MAP_LAYERS",
    "FeatureMaps",
    "LayerRow",
    "check_model_gradients",
    "class_probabilities",
    "confusion_matrix",
    "conv_layers",
    "first_conv",
    "format_summary",
    "is_leaf",
    "layer_counts",
    "leaf_modules",
    "most_confident_errors",
    "numerical_gradient",
    "numerical_gradient_array",
    "plot_confusion",
    "plot_feature_maps",
    "plot_filters",
    "plot_image_grid",
    "plot_learning_curves",
    "plot_misclassified",
    "predicts_argmin",
    "record_calls",
    "record_feature_maps",
    "relative_error",
    "summary",
]
