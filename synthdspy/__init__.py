"""synthdspy: synthetic training data for language models as optimizable DSPy programs."""

__version__ = "0.1.0"
