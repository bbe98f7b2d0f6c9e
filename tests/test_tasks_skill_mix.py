"""The ``skill_mix`` task: the skill list, the seeded k-skill draw, records and failures. Pipeline
tests: the LM is the offline simulator, so nothing here says the examples use their skills well."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

from synthdspy.catalog import TASKS
from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError
from synthdspy.provider_server import ProviderOptions
from synthdspy.records import Seed
from synthdspy.seeds.catalog import TopicSampler
from synthdspy.sim_server import serve_provider
from synthdspy.simulator import SimLM
from synthdspy.tasks.skill_mix import DEFAULT_SKILLS, SkillMixTask, load_skills, seed_topic

ROOT = Path(__file__).parent.parent
TOPIC_SEED = TopicSampler(seed=5).draw(0)
TASK_SEED = Seed.from_data({"instruction": "Suggest a protein-rich breakfast without eggs.", "input": ""})


def test_the_shipped_list_has_named_defined_skills_in_three_categories():
    skills = load_skills()
    assert len(skills) >= 30 and len({s.name for s in skills}) == len(skills)
    counts = {c: sum(s.category == c for s in skills) for c in ("language", "reasoning", "rhetoric")}
    assert all(n >= 8 for n in counts.values()) and sum(counts.values()) == len(skills)
    assert all(s.definition.endswith(".") and "\n" not in s.definition for s in skills)


@pytest.mark.parametrize("content, needle", [
    ("not json", "not valid JSON"),
    ("{}", "non-empty JSON list"),
    ('[{"name": "metaphor"}]', r"skill 0 \('metaphor'\): definition: Field required"),
    ('[{"name": "a", "definition": "x."}, {"name": "A", "definition": "y."}]', "skill names repeat"),
    ('[{"name": "a", "definition": "x.", "level": 3}]', "level: Extra inputs"),
])
def test_a_malformed_skills_file_is_one_line_naming_the_file(tmp_path, content, needle):
    path = tmp_path / "my_skills.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=needle) as info:
        load_skills(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_experiment_rejects_a_bad_skills_file_or_k_before_running(tmp_path):
    bad = tmp_path / "skills.json"
    bad.write_text('[{"name": "metaphor", "definition": ""}]')
    with pytest.raises(ConfigError, match=rf"task: .*{bad.name}: skill 0 \('metaphor'\): definition"):
        load_experiment(ROOT / "experiments/skill_mix.toml", [f"task.skills_file={json.dumps(str(bad))}"])
    with pytest.raises(ConfigError, match="no such file|cannot read"):
        load_experiment(ROOT / "experiments/skill_mix.toml", ['task.skills_file="/nonexistent/skills.json"'])
    bad.write_text('[{"name": "a", "definition": "x."}, {"name": "b", "definition": "y."}]')
    with pytest.raises(ConfigError, match="k=3 but .* has only 2 skills"):
        load_experiment(ROOT / "experiments/skill_mix.toml", [f"task.skills_file={json.dumps(str(bad))}", "task.k=3"])


def test_the_draw_is_seeded_by_sampling_seed_seed_and_rollout():
    task = SkillMixTask(k=3)
    draws = [[s.name for s in task.draw(TOPIC_SEED, r)] for r in range(6)]
    assert draws == [[s.name for s in SkillMixTask(k=3).draw(TOPIC_SEED, r)] for r in range(6)]
    assert all(len(set(d)) == 3 for d in draws) and len({tuple(d) for d in draws}) > 1
    other_sampling_seed = SkillMixTask(k=3, sampling_seed=1)
    assert [[s.name for s in other_sampling_seed.draw(TOPIC_SEED, r)] for r in range(6)] != draws
    assert [[s.name for s in task.draw(TASK_SEED, r)] for r in range(6)] != draws


def test_a_record_keeps_its_skills_and_topic_and_the_prompt_shows_their_definitions():
    lm = SimLM("sim/default")
    task = SkillMixTask(k=2, sampling_seed=4)
    with dspy.context(lm=lm):
        (record,) = task(TOPIC_SEED, rollout=2)
    skills = task.draw(TOPIC_SEED, 2)
    assert record.metadata["skills"] == [s.name for s in skills]
    assert record.metadata["skill_categories"] == [s.category for s in skills]
    assert record.metadata["topic"] == TOPIC_SEED.data["topic"]
    assert record.instruction and record.output and record.input == "" and record.task == "skill_mix"
    prompt = "\n".join(str(m["content"]) for m in lm.history[-1]["messages"])
    assert all(s.definition in prompt for s in skills) and TOPIC_SEED.data["topic"] in prompt


def test_topics_come_from_the_seed_topic_else_its_instruction_else_none(tmp_path):
    assert seed_topic(TOPIC_SEED) == TOPIC_SEED.data["topic"]
    assert seed_topic(TASK_SEED) == TASK_SEED.data["instruction"]
    assert seed_topic(Seed.from_data({"source": "x"})) == ""
    with dspy.context(lm=SimLM("sim/default")):
        (record,) = SkillMixTask(use_topic=False)(TOPIC_SEED)
    assert record.metadata["topic"] == ""


def test_a_users_skills_file_replaces_the_shipped_list(tmp_path):
    path = tmp_path / "skills.json"
    path.write_text(json.dumps([{"name": n, "definition": f"Use {n}."} for n in ("chiasmus", "litotes", "zeugma")]))
    params = TASKS["skill_mix"].params(skills_file=str(path), k=3)
    with dspy.context(lm=SimLM("sim/default")):
        (record,) = TASKS["skill_mix"].cls(**params.model_dump())(TOPIC_SEED)
    assert sorted(record.metadata["skills"]) == ["chiasmus", "litotes", "zeugma"]
    assert record.metadata["skill_categories"] == ["", "", ""]
    with pytest.raises(ValueError, match=f"k=4: expected 1..3 .*{path.name}"):
        SkillMixTask(k=4, skills_file=str(path))
    assert DEFAULT_SKILLS.is_file()


def test_a_malformed_answer_fails_the_unit():
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        SkillMixTask()(TOPIC_SEED)


def test_experiment_runs_over_http_against_a_provider_answering_503s(tmp_path, monkeypatch):
    """Pipeline test through dspy.LM -> LiteLLM -> HTTP, on built-in topic seeds, with 503s to retry."""
    from synthdspy.pipeline import run_generate

    monkeypatch.setenv("SYNTHDSPY_TEST_KEY", "sk-test-skill-mix-0000")
    with serve_provider(provider=ProviderOptions(rpm=600, tpm=2_000_000, unavailable_rate=0.2, seed=2)) as ep:
        sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false", "gates=[]"]
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_KEY", f"lm.{role}.num_retries=4"]
        out = run_generate(load_experiment(ROOT / "experiments/skill_mix.toml", sets), n=6, show_progress=False)
        stats = ep.stats()
    assert out.stats.passed >= 6 and out.stats.failed_units == 0
    assert stats["by_status"].get(503, 0) >= 1  # retried after the provider's retry-after
    names = {s.name for s in load_skills()}
    rows = [json.loads(line) for f in (tmp_path / "out/generate/store").glob("records-*.jsonl")
            for line in f.read_text().splitlines()]
    for row in rows:
        meta = row["metadata"] if isinstance(row["metadata"], dict) else json.loads(row["metadata"])
        assert len(meta["skills"]) == 2 and set(meta["skills"]) <= names and meta["topic"]
