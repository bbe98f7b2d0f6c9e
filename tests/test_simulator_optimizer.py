"""The simulator under DSPy optimizers: instruction proposals follow feedback and example outputs,
and MIPROv2 gets a signal from it."""

import statistics

import dspy
from simulator_helpers import SOURCE, memory_cache  # noqa: F401 (autouse fixture)

from synthdspy.simulator import SimLM, detect_knobs, overlap, repetition


class Propose(dspy.Signature):
    """Write a better instruction for the assistant from the feedback."""

    current_instruction: str = dspy.InputField()
    examples_with_feedback: str = dspy.InputField()
    new_instruction: str = dspy.OutputField()


def test_instruction_proposals_follow_feedback():
    def grounding_share(feedback: str) -> float:
        with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
            program = dspy.Predict(Propose)
            texts = [
                program(
                    current_instruction="Summarize the text.",
                    examples_with_feedback=feedback,
                    config={"rollout_id": r},
                ).new_instruction
                for r in range(60)
            ]
        assert all(t.startswith("Summarize the text.") for t in texts)
        return statistics.mean(detect_knobs(t)["grounding"] for t in texts)

    assert grounding_share("Many answers were unsupported by the source.") > grounding_share("Fine.") + 0.15


def test_repetitive_example_outputs_hint_at_diversity():
    def diversity_share(examples: str) -> float:
        with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
            program = dspy.Predict(Propose)
            texts = [
                program(current_instruction="Summarize.", examples_with_feedback=examples, config={"rollout_id": r})
                for r in range(60)
            ]
        return statistics.mean(detect_knobs(t.new_instruction)["diversity"] for t in texts)

    varied = " ".join(f"Example {i}: bees number {i * 7} found flower patch {i * 13} near hive {i}." for i in range(30))
    repeated = " ".join(["Example: the bees found flowers near the hive again today."] * 30)
    assert repetition(varied) < 0.3 <= repetition(repeated)
    assert diversity_share(repeated) > diversity_share(varied) + 0.15


def test_pipeline_optimizer_gets_a_signal_from_the_simulator():
    """Pipeline test: MIPROv2 over the simulator raises a word-overlap metric because the simulator writes
    more source words when its instructions ask for grounding, phrases its own proposals add. The outcome
    is decided by the simulator's heuristics and is not evidence that any optimizer improves data quality."""
    passages = [
        SOURCE,
        "The river flooded the valley in spring. Farmers moved their cattle to the hills. "
        "The water receded after three weeks. Engineers later built a levee along the bank.",
    ]
    data = [
        dspy.Example(passage=f"{p} Note {i}.").with_inputs("passage") for i, p in enumerate(passages * 10)
    ]

    def metric(example, pred, trace=None):
        return overlap(pred.summary, example.passage)

    program = dspy.Predict(dspy.Signature("passage -> summary", "Summarize the text."))
    evaluate = dspy.Evaluate(devset=data[10:], metric=metric, display_progress=False)
    with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
        before = evaluate(program).score
        optimizer = dspy.MIPROv2(
            metric=metric, auto=None, num_candidates=6, num_threads=1, verbose=False, seed=0
        )
        best = optimizer.compile(
            program,
            trainset=data[:10],
            valset=data[10:],
            num_trials=8,
            max_bootstrapped_demos=1,
            max_labeled_demos=0,
            minibatch=False,
        )
        after = evaluate(best).score
    assert after > before + 10
