"""Typed ``dspy.Signature`` classes, one file per family. Instructions here are the starting prompts
that ``synthdspy compile`` rewrites."""
