"""jaxai: the classic deep-learning families in JAX, trained by one functional loop."""

__version__ = "0.1.0"
