"""The ``self_instruct`` task: pool loading, the ROUGE-L novelty filter, and generation on the simulator."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError
from pydantic import ValidationError

from synthdspy.records import Seed
from synthdspy.signatures.self_instruct import TaskExample
from synthdspy.simulator import SimLM
from synthdspy.tasks.self_instruct import SelfInstructParams, SelfInstructTask, TaskPool, as_task, load_pool

SEED_TASKS = Path(__file__).parent.parent.parent / "shared" / "data" / "self_instruct" / "seed_tasks.jsonl"
POOL = [
    {"instruction": "Give three tips for staying healthy.", "instances": [{"input": "", "output": "Eat well."}]},
    {"instruction": "Translate the sentence into French.", "instances": [{"input": "Hello", "output": "Bonjour"}]},
    {"instruction": "Classify the review as positive or negative.",
     "instances": [{"input": "Great film!", "output": "positive"}]},
    {"instruction": "Write a haiku about autumn leaves.", "instances": [{"input": "<noinput>", "output": "..."}]},
]


@pytest.fixture
def pool_file(tmp_path) -> Path:
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in POOL))
    return path


def example(instruction: str) -> TaskExample:
    return TaskExample(instruction=instruction, input="", output="x")


def test_as_task_reads_both_layouts():
    nested = as_task(POOL[3])
    assert nested == TaskExample(instruction=POOL[3]["instruction"], input="", output="...")
    flat = as_task({"instruction": "Sum them.", "input": "1 2", "output": "3"})
    assert (flat.input, flat.output) == ("1 2", "3")
    assert as_task({"output": "no instruction"}) is None


def test_load_pool_errors_name_the_record(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(POOL[0]) + "\n" + json.dumps({"input": "x"}) + "\n")
    with pytest.raises(ValueError, match="record 2"):
        load_pool(bad)
    with pytest.raises(ValidationError, match="no such task pool file"):
        SelfInstructParams(pool=str(tmp_path / "missing.jsonl"))


@pytest.mark.usefixtures("needs_shared_data")
def test_the_175_seed_tasks_load_as_a_pool():
    tasks = load_pool(SEED_TASKS)
    assert len(tasks) == 175 and all(t.instruction for t in tasks)
    assert sum(bool(t.input) for t in tasks) > 0 and not any(t.input == "<noinput>" for t in tasks)


def test_pool_admits_novel_tasks_and_rejects_near_duplicates():
    pool = TaskPool([example(r["instruction"]) for r in POOL], threshold=0.7)
    batch = [example("Give three tips for staying healthy!"), example("Explain how a rainbow forms in the sky."),
             example("Explain how a rainbow forms in the sky")]
    (dup, dup_score, dup_match), (new, new_score, _), (again, _, again_match) = pool.admit_batch(batch, "u1")
    assert not dup and dup_score == pytest.approx(1.0) and dup_match == POOL[0]["instruction"]
    assert new and new_score < 0.7 and len(pool) == len(POOL) + 1
    assert not again and again_match == "Explain how a rainbow forms in the sky.", "checked within the batch"
    (other_unit,) = pool.admit_batch([example("Explain how a rainbow forms in the sky!")], "u2")
    assert not other_unit[0] and pool.rejected == 3


def test_a_unit_run_again_replaces_its_own_additions():
    pool = TaskPool([example("Name a colour.")], threshold=0.7)
    assert pool.admit_batch([example("Describe the water cycle in two sentences.")], "u1")[0][0]
    assert pool.admit_batch([example("Describe the water cycle in two short sentences.")], "u1")[0][0]
    assert [t.instruction for t in pool.tasks] == ["Name a colour.", "Describe the water cycle in two short sentences."]


def test_concurrent_units_proposing_one_task_keep_exactly_one():
    pool = TaskPool([example(r["instruction"]) for r in POOL], threshold=0.7)
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(
            lambda u: pool.admit_batch([example("Summarise the plot of a novel you like.")], f"u{u}")[0][0],
            range(16)))
    assert sum(results) == 1 and len(pool) == len(POOL) + 1


def test_deep_copies_have_their_own_pool():
    pool = TaskPool([example("Name a colour.")], threshold=0.7)
    twin = copy.deepcopy(pool)
    twin.admit_batch([example("Describe the water cycle in two sentences.")], "u1")
    assert len(pool) == 1 and len(twin) == 2


def test_forward_keeps_only_novel_allowed_tasks_and_grows_the_pool(pool_file):
    task = SelfInstructTask(pool=str(pool_file), num_examples=2, num_tasks=4)
    proposals = [
        TaskExample(instruction="Give three tips for staying healthy.", input="", output="dup"),
        TaskExample(instruction="Describe the image below.", input="", output="blocked"),
        TaskExample(instruction="List four uses of a paperclip.", input="<noinput>", output="Hold paper."),
        TaskExample(instruction="  ", input="", output="empty"),
    ]
    seen = {}

    def fake_generate(examples, num_tasks, config):
        seen["examples"], seen["num_tasks"] = examples, num_tasks
        return dspy.Prediction(tasks=proposals)

    task.generate = fake_generate
    seed = Seed(id="seed_task_1", data=POOL[1])
    records = task(seed)
    assert [r.instruction for r in records] == ["List four uses of a paperclip."]
    assert records[0].input == "" and records[0].metadata["rouge_l_max"] < 0.7
    assert seen["examples"][0].instruction == POOL[1]["instruction"] and len(seen["examples"]) == 2
    assert len({e.instruction for e in seen["examples"]}) == 2
    assert len(task.pool) == len(POOL) + 1
    assert [r.id for r in task(seed)] == [r.id for r in records], "a unit run again is not its own duplicate"
    assert task(seed, rollout=1) == [], "another unit's identical proposals are not novel"


def test_in_context_sample_depends_on_seed_and_rollout_only(pool_file):
    picks = []
    for _ in range(2):
        task = SelfInstructTask(pool=str(pool_file), num_examples=3, num_tasks=1)
        task.generate = lambda examples, num_tasks, config: (picks.append([e.instruction for e in examples])
                                                             or dspy.Prediction(tasks=[]))
        task(Seed(id="s", data={"topic": "no task"}), rollout=2)
    assert picks[0] == picks[1] and len(picks[0]) == 3


def test_generation_on_the_simulator_and_malformed_answers(pool_file):
    task = SelfInstructTask(pool=str(pool_file))
    with dspy.context(lm=SimLM("sim/default")):
        records = task(Seed(id="seed_task_0", data=POOL[0]))
    assert len(task.pool) == len(POOL) + len(records)
    assert all(r.metadata["rouge_l_max"] < 0.7 for r in records)
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        task(Seed(id="seed_task_2", data=POOL[2]))
