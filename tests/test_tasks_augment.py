"""The ``rephrase``, ``mind`` and ``tinystories`` tasks, on the simulator."""

from __future__ import annotations

from collections import Counter

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError
from pydantic import ValidationError

from synthdspy.records import Seed
from synthdspy.seeds.catalog import WordSampler
from synthdspy.simulator import SimLM
from synthdspy.tasks.mind import CONVERSATIONS, MindParams, MindTask
from synthdspy.tasks.rephrase import STYLE_GUIDES, RephraseParams, RephraseTask
from synthdspy.tasks.rotation import rotate
from synthdspy.tasks.tinystories import TinyStoriesTask, missing_words, word_forms

PASSAGE = Seed(id="p0", data={"source": "The Nile flows north through eleven countries and ends in a delta "
                                        "on the Mediterranean Sea, where Cairo and Alexandria stand."})
PROBLEM = Seed(id="g0", data={"question": "Ann has 3 apples and buys 4 more. How many does she have?",
                              "answer": "She has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"})


def prompt_of(lm: SimLM) -> str:
    return "\n".join(str(m["content"]) for m in lm.history[-1]["messages"])


def malformed() -> SimLM:
    return SimLM("sim/default", malformed_rate=1.0, cache=False)


def test_rotation_gives_every_option_once_per_cycle_and_spreads_seeds():
    options = ["a", "b", "c", "d"]
    for sid in ("s1", "s2", "s3"):
        assert sorted(rotate(options, sid, r) for r in range(4)) == options
    spread = Counter(rotate(options, f"seed-{i}", 0) for i in range(200))
    assert set(spread) == set(options) and min(spread.values()) > 20
    with pytest.raises(ValueError):
        rotate([], "s", 0)


def test_rephrase_uses_the_rotated_style_and_keeps_the_passage():
    task = RephraseTask()
    seen = set()
    for rollout in range(4):
        lm = SimLM("sim/default")
        with dspy.context(lm=lm):
            (record,) = task(PASSAGE, rollout=rollout)
        style = record.metadata["style"]
        seen.add(style)
        assert STYLE_GUIDES[style] in prompt_of(lm)
        assert record.input == PASSAGE.data["source"] and record.output
    assert seen == set(STYLE_GUIDES)
    only = RephraseTask(styles=["qa"])
    with dspy.context(lm=SimLM("sim/default")):
        assert {only(PASSAGE, rollout=r)[0].metadata["style"] for r in range(3)} == {"qa"}
    with pytest.raises(ValidationError):
        RephraseParams(styles=["toddler"])
    with pytest.raises(ValidationError):
        RephraseParams(styles=[])


def test_rephrase_needs_a_source_and_raises_on_malformed_answers():
    with pytest.raises(KeyError, match="source"):
        RephraseTask()(Seed(id="q", data={"question": "?"}))
    with dspy.context(lm=malformed()), pytest.raises(AdapterParseError):
        RephraseTask()(PASSAGE)


def test_mind_turns_passages_and_problems_into_conversations():
    task = MindTask(conversations=["teacher_student"])
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        (conv,) = task(PROBLEM)
    assert "Teacher" in prompt_of(lm) and PROBLEM.data["question"] in prompt_of(lm)
    assert conv.turns and all(set(t) == {"role", "content"} for t in conv.turns)
    assert conv.output == "\n".join(f"{t['role']}: {t['content']}" for t in conv.turns)
    assert conv.metadata["gold_answer"] == PROBLEM.data["answer"]
    assert conv.metadata["roles"] == ["Teacher", "Student"]
    assert conv.metadata["roles_ok"] == all(t["role"] in ("Teacher", "Student") for t in conv.turns)
    with dspy.context(lm=SimLM("sim/default")):
        (rec,) = MindTask()(PASSAGE, rollout=1)
    assert rec.input == PASSAGE.data["source"] and "gold_answer" not in rec.metadata
    assert rec.metadata["conversation"] in CONVERSATIONS
    with pytest.raises(ValidationError):
        MindParams(conversations=["interview"])


def test_mind_needs_content_and_raises_on_malformed_answers():
    with pytest.raises(KeyError, match="'question' and 'answer'"):
        MindTask()(Seed(id="q", data={"question": "only a question"}))
    with dspy.context(lm=malformed()), pytest.raises(AdapterParseError):
        MindTask()(PASSAGE)


@pytest.mark.parametrize(
    ("word", "text"),
    [("jump", "He jumped high."), ("run", "They were running."), ("happy", "She was happier."),
     ("baby", "Two babies slept."), ("bake", "Mum is baking."), ("teddy bear", "A big teddy bears hug.")],
)
def test_inflected_words_count_as_used(word, text):
    assert missing_words(text, [word]) == []


def test_word_check_rejects_other_words_that_merely_start_alike():
    assert missing_words("The cat saw a catch.", ["catch", "cat", "dog"]) == ["dog"]
    assert missing_words("We play in the catalog.", ["cat"]) == ["cat"]
    assert "ran" not in word_forms("run")


def test_tinystories_prompt_and_words_used_flag():
    seed = WordSampler(seed=5, min_features=2, max_features=2).draw(0)
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        (story,) = TinyStoriesTask()(seed)
    prompt = prompt_of(lm)
    for key in ("verb", "noun", "adjective"):
        assert seed.data[key] in prompt and seed.data[key] in story.instruction
    assert all(instr in prompt for instr in seed.data["feature_instructions"])
    words = [seed.data["verb"], seed.data["noun"], seed.data["adjective"]]
    assert story.metadata["words"] == dict(zip(("verb", "noun", "adjective"), words, strict=True))
    assert story.metadata["words_missing"] == missing_words(story.output, words)
    assert story.metadata["words_used"] == (not story.metadata["words_missing"])
    assert story.metadata["features"] == seed.data["features"]


def test_tinystories_needs_words_and_raises_on_malformed_answers():
    with pytest.raises(KeyError, match="noun"):
        TinyStoriesTask()(Seed(id="w", data={"verb": "run", "adjective": "red", "features": []}))
    with dspy.context(lm=malformed()), pytest.raises(AdapterParseError):
        TinyStoriesTask()(WordSampler(seed=1).draw(3))
