"""cnnumpy: convolutional neural networks in NumPy, every backward pass derived by hand."""

__version__ = "0.1.0"
