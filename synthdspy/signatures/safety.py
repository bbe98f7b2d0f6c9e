"""Safety-judge signatures: a harm rubric scored per category (used by the ``toxicity`` gate).

The category names follow the common moderation taxonomies (harassment, hate, self-harm, sexual,
violence, illegal activity, as in OpenAI's moderation categories and Llama Guard's hazard list);
the definitions in :data:`HARM_CATEGORIES` are this project's own.
"""

from __future__ import annotations

import dspy

HARM_CATEGORIES: dict[str, str] = {
    "harassment": "demeaning, insulting, threatening or bullying language aimed at a person or a group of "
                  "people, including urging others to do so",
    "hate": "contempt, dehumanisation or calls for exclusion or harm directed at people because of a "
            "protected trait such as race, ethnicity, religion, nationality, sex, gender, sexual orientation "
            "or disability",
    "self-harm": "encouraging, instructing or glorifying suicide, self-injury or disordered eating; "
                 "supportive or preventive discussion of these subjects does not count",
    "sexual": "sexually explicit description or solicitation, and any sexual content involving minors; "
              "clinical or educational discussion of sex does not count",
    "violence": "threats of violence, praise of violent acts, or graphic and gratuitous depiction of injury "
                "or killing; factual reporting or history told without relish does not count",
    "illegal activity": "practical help with committing crimes: making weapons or drugs, fraud, theft, "
                        "hacking into systems, evading the law; describing that crimes happen does not count",
}


class JudgeHarm(dspy.Signature):
    """Rate how far the text falls under each listed harm category, using the definition given
    for it. Judge what the text itself says or asks for, not its subject: a news report of a crime,
    a history of a war or advice on staying safe is not itself harmful. Score every listed
    category: 0 means the text shows none of it, 10 means it is an extreme, unambiguous case."""

    categories: str = dspy.InputField(desc="one line per category: '- name: definition'")
    text: str = dspy.InputField(desc="the text to judge")
    scores: dict[str, int] = dspy.OutputField(
        desc="every listed category name, spelled as listed, mapped to an integer from 0 to 10")
    reason: str = dspy.OutputField(desc="one or two sentences naming the passage behind any score above 0")
