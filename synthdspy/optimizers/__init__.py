"""Optimizers: compile a synthesis program's prompts with DSPy optimizers against the objective."""
