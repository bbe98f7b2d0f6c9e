"""Generation tasks: each a ``dspy.Module`` whose ``forward(seed)`` returns records."""
