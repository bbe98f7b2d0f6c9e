"""Test session setup: a fresh DSPy cache per session, so cached answers from earlier runs never
mask work a test expects to happen (subprocesses inherit the variable)."""

import os
import tempfile

os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="synthdspy-dspy-cache-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
