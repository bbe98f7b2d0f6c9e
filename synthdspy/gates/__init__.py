"""Quality gates: judged gates and deterministic verifiers, each a ``dspy.Module`` returning a Verdict."""
