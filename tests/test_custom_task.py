"""The ``custom`` task: a DSPy signature declared in the experiment file, its one-line config errors,
its record mapping, and compile -> save -> load -> generate without any Python of the user's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import dspy
import pytest
from dspy.utils import DummyLM

from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError
from synthdspy.records import Seed, SeedFieldError
from synthdspy.tasks.custom import CustomParams, CustomTask

ROOT = Path(__file__).parent.parent
EXPERIMENT = ROOT / "experiments" / "custom_task.toml"
STRING_FORM = ["task.inputs={}", "task.outputs={}"]  # drop the file's tables to use task.signature
PASSAGE = "The Nile flows north through eleven countries and empties into the Mediterranean Sea."


def load(*overrides: str, tmp_path: Path | None = None):
    out = [f"output.dir={json.dumps(str(tmp_path / 'out'))}"] if tmp_path else []
    return load_experiment(EXPERIMENT, [*out, "tracking.autolog=false", *overrides])


def test_tables_and_string_build_the_same_signature_with_dspy():
    tables = CustomParams.model_validate(load().task.params).build_signature()
    string = CustomParams(
        signature="passage: str -> question: str, answer: str, difficulty: Literal['easy', 'medium', 'hard']",
        instructions="Ask and answer.",
    ).build_signature()
    assert issubclass(tables, dspy.Signature) and issubclass(string, dspy.Signature)
    assert list(tables.input_fields) == list(string.input_fields) == ["passage"]
    assert list(tables.output_fields) == list(string.output_fields) == ["question", "answer", "difficulty"]
    for sig in (tables, string):
        assert sig.output_fields["difficulty"].annotation == Literal["easy", "medium", "hard"]
    assert tables.output_fields["answer"].json_schema_extra["desc"] == "the answer, stated only from the passage"
    assert tables.instructions.startswith("Read the passage and ask one question")
    assert string.instructions == "Ask and answer."


def test_typed_outputs_keep_their_type():
    sig = CustomParams(inputs={"text": {}}, outputs={"score": {"type": "int"}, "tags": {"type": "list[str]"}},
                       ).build_signature()
    assert sig.output_fields["score"].annotation is int
    assert sig.output_fields["tags"].annotation == list[str]
    assert "Given the fields `text`" in sig.instructions  # DSPy's default when none are given


@pytest.mark.parametrize("overrides, key, needle", [
    ([*STRING_FORM, 'task.signature="passage -> question -> answer"'], "task.signature", "exactly one '->'"),
    ([*STRING_FORM, 'task.signature="passage: os -> answer"'], "task.signature", "unknown type 'os'"),
    ([*STRING_FORM, 'task.signature="passage: str -> passage: str"'], "task.signature", "distinct names"),
    ([*STRING_FORM, 'task.signature="passage, 2x -> answer"'], "task.signature", "not a list of 'name: type'"),
    ([*STRING_FORM], "task.signature", "required: a DSPy signature"),
    (['task.signature="passage -> answer"'], "task.signature", "not both"),
    (['task.outputs.difficulty.type="Literl[1]"'], "task.outputs.difficulty.type", "unknown type 'Literl'"),
    (["task.outputs.difficulty.type=[]"], "task.outputs.difficulty.type", "at least one value"),
    (['task.outputs.difficulty.choices=["a"]'], "task.outputs.difficulty.choices", "unknown key"),
    (["task.outputs={}"], "task.signature", "one [task.outputs.NAME] table"),
    (["task.inputs_from={ pasage = 'source' }"], "task.inputs_from", "['pasage'] are not input fields"),
    (["task.record={ output = 'reply' }"], "task.record", "output = 'reply' is not a field"),
    (["task.record={ response = 'answer' }"], "task.record.response.[key]", "Input should be 'instruction'"),
])
def test_invalid_declarations_fail_in_one_line_naming_the_key(overrides, key, needle):
    with pytest.raises(ConfigError) as info:
        load(*overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{EXPERIMENT}: {key}: ") and needle in message


def test_records_map_fields_and_keep_unmapped_outputs_typed_in_metadata():
    task = CustomTask(signature="passage: str -> question: str, answer: str, score: int, tags: list[str]",
                      inputs_from={"passage": "source"},
                      record={"instruction": "question", "input": "passage", "output": "answer"})
    lm = DummyLM([{"question": " Where does the Nile end? ", "answer": "In the Mediterranean Sea.", "score": "7",
                   "tags": '["rivers", "africa"]'}])
    with dspy.context(lm=lm):
        (record,) = task(Seed.from_data({"source": PASSAGE}, id="s1"))
    assert (record.task, record.instruction, record.input) == ("custom", "Where does the Nile end?", PASSAGE)
    assert record.output == "In the Mediterranean Sea."
    assert record.metadata == {"score": 7, "tags": ["rivers", "africa"]}


def test_output_defaults_to_the_first_output_field_and_inputs_to_seed_fields_of_their_name():
    task = CustomTask(signature="topic, audience -> lesson, quiz")
    lm = DummyLM([{"lesson": "Tides follow the moon.", "quiz": "What moves the tides?"}])
    with dspy.context(lm=lm):
        (record,) = task(Seed.from_data({"topic": "tides", "audience": "children"}, id="s2"))
    assert (record.output, record.instruction, record.input) == ("Tides follow the moon.", "", "")
    assert record.metadata == {"quiz": "What moves the tides?"}
    assert "tides" in lm.history[-1]["messages"][-1]["content"]  # the seed's topic reached the prompt


def test_a_seed_without_the_mapped_field_names_it():
    task = CustomTask(signature="passage -> answer", inputs_from={"passage": "source"})
    with pytest.raises(SeedFieldError, match=r"seed s3: task 'custom' needs field\(s\) \['source'\]; the seed "
                                             r"has \['text'\]"):
        task(Seed.from_data({"text": PASSAGE}, id="s3"))


def test_compile_saves_a_program_that_loads_back_from_its_config_and_generates(tmp_path):
    """Pipeline test over the offline simulator: it shows the custom task compiles, saves, loads and
    generates through the same code as built-in tasks, not that its records are any good."""
    from synthdspy.pipeline import run_compile, run_generate
    from synthdspy.program import SynthesisProgram
    from synthdspy.store import read_records

    exp = load("seeds.train_size=4", "seeds.dev_size=4", "compile.num_candidates=2", tmp_path=tmp_path)
    path = run_compile(exp).program_path
    saved = json.loads(path.read_text())
    assert saved["task"]["name"] == "custom" and "task.predict" in saved["state"]
    assert saved["state"]["task.predict"]["demos"], "bootstrap_rs kept no demo for the custom predictor"
    program = SynthesisProgram.load_program(path)
    assert program.program_hash == saved["program_hash"] != SynthesisProgram.from_experiment(exp).program_hash
    predictor = program.task.predict
    assert list(predictor.signature.output_fields) == ["question", "answer", "difficulty"]
    assert predictor.demos[0]["difficulty"] in ("easy", "medium", "hard")

    out = run_generate(exp, n=6, program_path=str(path), show_progress=False)
    records = list(read_records(out.store_dir))
    assert out.stats.passed >= 6 and len(records) >= 6
    for record in records:
        assert record.task == "custom" and record.provenance.program_hash == saved["program_hash"]
        assert record.input and record.instruction and record.output
        assert record.metadata["difficulty"] in ("easy", "medium", "hard")
        assert [v.gate for v in record.verdicts] == ["grounding", "reward"]


def test_generate_over_a_provider_endpoint_with_server_errors(tmp_path, monkeypatch):
    """The custom task's calls go through dspy.LM -> LiteLLM -> HTTP to the provider-realistic endpoint,
    which answers 500 to a share of requests; retries recover and every record is complete."""
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider
    from synthdspy.store import read_records

    monkeypatch.setenv("SYNTHDSPY_TEST_CUSTOM_KEY", "sk-test-custom-0123456789")
    with serve_provider(provider=ProviderOptions(server_error_rate=0.2, seed=4)) as ep:
        sets = []
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_CUSTOM_KEY", f"lm.{role}.num_retries=4"]
        out = run_generate(load(*sets, tmp_path=tmp_path), n=8, show_progress=False)
        stats = ep.stats()
    assert stats["by_status"].get(500, 0) >= 1 and out.stats.failed_units == 0
    records = list(read_records(out.store_dir))
    assert out.stats.passed >= 8
    seeds = {json.loads(line)["text"] for line in (ROOT.parent / "shared/data/passages/passages.jsonl").open()}
    for record in records:
        assert record.input in seeds  # input = the seed's passage, as record = {input = "passage"} says
        assert record.metadata["difficulty"] in ("easy", "medium", "hard") and record.output
        assert record.provenance.lm == "openai/sim-model"


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(use_json_adapter_fallback=False), dspy.JSONAdapter()],
                         ids=["chat", "json"])
def test_a_malformed_answer_to_a_declared_signature_raises_a_parse_error(adapter):
    from dspy.utils.exceptions import AdapterParseError

    from synthdspy.simulator import SimLM

    task = CustomTask(**load().task.params)
    with dspy.context(lm=SimLM(malformed_rate=1.0, cache=False), adapter=adapter), pytest.raises(AdapterParseError):
        task(Seed.from_data({"source": PASSAGE}, id="s4"))
