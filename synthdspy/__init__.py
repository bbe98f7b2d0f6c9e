"""synthdspy: synthetic training data for language models as optimizable DSPy programs."""

import os as _os

# LiteLLM's bundled price map, read at LiteLLM's import: no network fetch of the live map (set the
# variable to False before importing synthdspy to use it).
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
