"""Sentence frames the writer fills: generic filler, openings, questions, and the templates of
composed text about a topic's items (basic and nuanced frames, audience lines, quiz questions)."""

_FILLER = (
    "This is an important point about {topic}.",
    "There are several aspects of {topic} to consider.",
    "Overall, {topic} is a relevant and interesting subject.",
    "Many people have opinions about {topic}.",
    "It is worth thinking about {topic} in more detail.",
    "{topic} matters in many situations.",
    "A good understanding of {topic} helps in practice.",
    "Some details about {topic} are often overlooked.",
    "People approach {topic} in different ways.",
    "The basics of {topic} are easy to state but harder to apply.",
    "Questions about {topic} come up again and again.",
    "Examples make {topic} easier to follow.",
)
_PLAIN_OPENINGS = ("", "In summary, ")
_DIVERSE_OPENINGS = (
    "",
    "Notably, ",
    "From another angle, ",
    "Put simply, ",
    "Interestingly, ",
    "In practical terms, ",
    "A closer look shows that ",
    "Consider this: ",
    "One detail stands out: ",
    "Seen broadly, ",
    "Against expectations, ",
    "On reflection, ",
    "At its core, ",
    "For a newcomer, ",
    "In contrast, ",
    "To be precise, ",
    "Importantly, ",
    "As a concrete case, ",
    "Historically, ",
    "Taken together, ",
)
_PLAIN_QUESTIONS = ("What does the text say about {x}?", "What is {x}?")
_DIVERSE_QUESTIONS = (
    "What does the text say about {x}?",
    "Why does {x} matter here?",
    "How is {x} described?",
    "In what way does {x} relate to the rest of the text?",
    "Which role does {x} play?",
    "What would change without {x}?",
    "How would you explain {x} to a newcomer?",
    "What evidence is given about {x}?",
    "When does {x} become important?",
    "What is surprising about {x}?",
)


# Composed sentences about a topic, for requests with no source text (a topic, its subtopics and
# keywords). {a}/{A}: the passage's focus item (mid-sentence / sentence start); {a2}: another
# item; {k}/{K}, {k2}: keywords (other items when keywords are not asked for); {t}: the topic.
# With the diversity knob off only the first two of each pool are used, so texts repeat.
_BASIC = (
    "{A} is a central part of {t}.",
    "Most questions about {a} come back to {k}.",
    "{A} is easiest to grasp through {k}.",
    "In {t}, {a} is usually the first thing to understand, because it sets the terms for {k}.",
    "A simple example shows how {k} works within {a}.",
    "{K} describes one concrete way in which {a} is carried out.",
    "Students of {t} meet {a} early and return to it often.",
    "The idea of {k} gives {a} a precise meaning.",
    "Anyone who works with {a} soon learns to watch {k} closely.",
    "One way to picture {a} is to follow {k} from start to finish.",
    "Take {k} away and {a} becomes hard to explain at all.",
    "Early accounts of {a} already mentioned {k}, though only in passing.",
)
_NUANCE = (
    "However, {k} behaves differently once {a} grows in scale, so the simple picture needs refinement.",
    "The trade-off between {k} and {k2} shapes many decisions about {a}.",
    "An exception arises where {a} meets {a2}: {k} no longer tells the whole story.",
    "Specialists still debate how much weight {k} deserves next to {a2}.",
    "Because {a} depends on {k}, a change in one soon shows up in the other.",
    "Seen together, {a} and {a2} show why {t} cannot be reduced to a single rule.",
    "A common mistake is to treat {k} as fixed, when in practice it varies with {a}.",
    "Therefore, judging {a} well means checking how {k} and {k2} interact.",
    "Under unusual conditions, {a} can even reverse what {k} normally suggests.",
    "The limits of {k} become clear only when {a2} enters the picture.",
)
_KEYWORD_FRAMES = tuple(t for t in _BASIC if "{k}" in t or "{K}" in t)
_AUDIENCE = (
    "This {style}lesson on {t} is written for {r}.",
    "Imagine you are {r}: {t} touches your world more than it first seems.",
    "For {r}, the best way into {t} is through {a}.",
    "If you are {r}, start with one question: what holds {a} together?",
)
_QUIZ_QUESTIONS = (
    "Which idea does the lesson link most closely to {a}?",
    "In {t}, which term belongs with {a}?",
    "According to the lesson, what helps explain {a}?",
    "Which concept would you check first when studying {a}?",
)
