"""Compiled variants as MLflow models and Prompt Registry versions.

``synthdspy compile`` logs each variant with ``mlflow.dspy.log_model`` (DSPy's own save format,
``use_dspy_model_save=True``), so ``mlflow.dspy.load_model(uri)`` returns a :class:`LoggedVariant`
(its ``.program`` is the compiled :class:`~synthdspy.program.SynthesisProgram`) and
``mlflow.pyfunc.load_model(uri).predict({...seed fields...})`` runs it on one seed. Each
predictor's instructions become a version of the prompt ``<experiment>.<predictor>`` in MLflow's
Prompt Registry, tagged with the variant and program hash, so the UI's prompt page compares two
variants' instructions side by side.

Nothing secret reaches the logged model: the program is rebuilt from its saved JSON (configs and
predictor state, no LM objects), every non-scalar DSPy setting (the LM, adapter, callbacks) is
blanked while MLflow pickles ``dspy.settings``, and the LM config kept for pyfunc has no API key
(only ``api_key_env``, the variable's name), no ``extra`` headers or credential-named parameters,
and no user/password or credential query parameters in ``api_base``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dspy

from synthdspy import __version__
from synthdspy.config import Experiment, LMConfig
from synthdspy.program import SynthesisProgram
from synthdspy.records import Seed
from synthdspy.tracking import REDACTED, SECRET_KEY_PATTERN, flatten

MODEL_NAME = "variant"
_NOT_PROMPT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_CREDENTIAL_QUERY = {"key", "sig", "signature", "code"}


class LoggedVariant(dspy.Module):
    """A compiled variant as MLflow stores it: the program and a secret-free LM config.

    ``variant(topic="...", style="...")`` (the keyword arguments are one seed's ``data``; ``seed_id``
    and ``rollout`` are optional) runs the program on that seed and returns
    ``dspy.Prediction(records=[...])``, each record a JSON-ready dict with its gate verdicts. Inside a
    :func:`synthdspy.lm.roles_context` it uses those roles; otherwise it builds the roles from
    ``lm_config`` (a real model reads its key from the environment variable ``api_key_env`` names).

    Raises (when called):
        synthdspy.configio.ConfigError: the stored LM config names a key variable that is unset.
    """

    def __init__(self, program: SynthesisProgram, lm_config: dict[str, Any]) -> None:
        super().__init__()
        self.program = program
        self.lm_config = lm_config

    def forward(self, seed_id: str | None = None, rollout: int = 0, **data: Any) -> dspy.Prediction:
        from synthdspy.lm import build_lms, current_roles, roles_context

        seed = Seed.from_data(data, id=seed_id)
        if current_roles() is not None:
            records = self.program(seed, rollout=rollout)
        else:
            with roles_context(build_lms(LMConfig.model_validate(self.lm_config))):
                records = self.program(seed, rollout=rollout)
        return dspy.Prediction(records=[r.model_dump(mode="json") for r in records])


@dataclass
class VariantLog:
    """What :func:`log_variant` logged: the model's URI and id, and each predictor's prompt URI."""

    model_uri: str
    model_id: str
    prompts: dict[str, str]


def strip_credentials(url: str | None) -> str | None:
    """``url`` without user/password and without credential-like query parameters (``key``,
    ``api_key``, ``sig``, ``token`` ...); None stays None."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in _CREDENTIAL_QUERY and not SECRET_KEY_PATTERN.search(k)]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query), ""))


def secret_free_lm_config(config: LMConfig) -> dict[str, Any]:
    """The ``[lm]`` config as JSON with no credential: ``api_base`` through :func:`strip_credentials`,
    and ``extra`` without headers or any parameter whose (nested) key names a credential."""
    out = config.model_dump(mode="json")
    for role in out.values():
        role["api_base"] = strip_credentials(role["api_base"])
        role["extra"] = {k: v for k, v in role["extra"].items() if k not in ("extra_headers", "headers")
                         and REDACTED not in flatten({k: v}).values()}
    return out


def prompt_name(experiment: str, predictor: str) -> str:
    """The registry name of ``predictor``'s prompt: ``<experiment>.<predictor>`` with every run of
    characters MLflow refuses (brackets, spaces ...) turned into one dot."""
    return _NOT_PROMPT_NAME.sub(".", f"{experiment}.{predictor}").strip(".")


def register_prompts(program: SynthesisProgram, experiment: str, variant: str) -> dict[str, Any]:
    """Register each predictor's instructions as a version of :func:`prompt_name`, tagged
    ``variant``, ``program_hash``, ``predictor``, ``demos`` (count) and ``fields`` (the signature).

    A version with the same variant, program hash and text is reused (recompiling the same variant
    adds no duplicate). Returns ``{predictor: PromptVersion}``.
    """
    import mlflow

    client = mlflow.MlflowClient()
    versions = {}
    for name, predictor in program.named_predictors():
        text = predictor.signature.instructions
        tags = {"variant": variant, "program_hash": program.program_hash, "predictor": name,
                "demos": str(len(predictor.demos)), "experiment": experiment,
                "fields": f"{', '.join(predictor.signature.input_fields)} -> "
                          f"{', '.join(predictor.signature.output_fields)}"}
        registry_name = prompt_name(experiment, name)
        versions[name] = _existing_version(client, registry_name, text, tags) or mlflow.genai.register_prompt(
            registry_name, text, commit_message=f"{variant} ({program.program_hash})", tags=tags)
    return versions


def _existing_version(client: Any, name: str, text: str, tags: dict[str, str]) -> Any:
    """The version of prompt ``name`` with this text, variant and program hash, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_prompt_versions(name, max_results=1000)
    except MlflowException:  # no such prompt yet
        return None
    for version in found:
        same = all(version.tags.get(k) == tags[k] for k in ("variant", "program_hash"))
        if same and version.template == text:
            return version
    return None


@contextmanager
def _plain_dspy_settings() -> Iterator[None]:
    """Blank every DSPy setting that is not a plain value (the LM and its client, the adapter,
    callbacks, the role LMs), so MLflow's pickle of ``dspy.settings`` holds no object; DSPy's
    save-time pickle warnings are silenced meanwhile."""
    blank = {k: ([] if isinstance(v, list) else None) for k, v in dict(dspy.settings.config).items()
             if not isinstance(v, (bool, int, float, str, type(None)))}
    # DSPy warns at every save that pickles may run code when loaded: true of any MLflow DSPy model
    quiet = [logging.getLogger(name) for name in ("dspy.primitives.base_module", "dspy.dsp.utils.settings")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.ERROR)
    try:
        with dspy.context(**blank):
            yield
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)


def log_variant(program_path: Path, exp: Experiment, variant: str, config_hash: str) -> VariantLog:
    """Log the variant saved at ``program_path`` to the active MLflow run as model ``variant``
    (flavor ``dspy``, also loadable as pyfunc), after registering its prompts
    (:func:`register_prompts`), which are linked to the model and the run. Sets the run tag
    ``model_uri``.

    Raises:
        synthdspy.configio.ConfigError: ``program_path`` is not a readable program file.
        mlflow.exceptions.MlflowException: the tracking store refused the model or a prompt.
    """
    import mlflow

    program = SynthesisProgram.load_program(program_path)  # configs and saved state only: no LM objects
    versions = register_prompts(program, exp.name, variant)
    model = LoggedVariant(program, secret_free_lm_config(exp.lm))
    metadata = {"experiment": exp.name, "variant": variant, "program_hash": program.program_hash,
                "config_hash": config_hash, "task": exp.task.name, "synthdspy_version": __version__}
    requirements = [f"synthdspy=={__version__}", f"dspy=={dspy.__version__}", f"mlflow=={mlflow.__version__}"]
    with _plain_dspy_settings():
        info = mlflow.dspy.log_model(model, name=MODEL_NAME, use_dspy_model_save=True, metadata=metadata,
                                     pip_requirements=requirements, prompts=list(versions.values()),
                                     tags={k: str(v) for k, v in metadata.items()})
    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    for version in versions.values():
        client.link_prompt_version_to_run(run_id, version)
    mlflow.set_tag("model_uri", info.model_uri)
    return VariantLog(info.model_uri, info.model_id, {n: v.uri for n, v in versions.items()})
