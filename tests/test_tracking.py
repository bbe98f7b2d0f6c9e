"""MLflow params are flattened and never carry secrets."""

from synthdspy.tracking import REDACTED, flatten, scrub_env_secrets


def test_flatten_nested_and_redacts_secrets():
    flat = flatten({"lm": {"generator": {"model": "openai/x", "api_key": "sk-abc", "api_key_env": "OPENAI_API_KEY"}},
                    "headers": {"Authorization": "Bearer t0k"}, "n": 3, "tags": [1, 2]})
    assert flat["lm.generator.model"] == "openai/x"
    assert flat["lm.generator.api_key"] == REDACTED
    assert flat["lm.generator.api_key_env"] == "OPENAI_API_KEY"
    assert flat["headers.Authorization"] == REDACTED
    assert flat["n"] == 3 and flat["tags"] == "[1, 2]"


def test_scrub_env_secrets(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "supersecretvalue123")
    assert "supersecretvalue123" not in scrub_env_secrets("error calling with key supersecretvalue123")
