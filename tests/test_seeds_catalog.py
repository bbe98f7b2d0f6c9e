"""Shipped catalogs and the seeded samplers."""

import json
from collections import Counter

import pytest

from synthdspy.seeds.catalog import (
    CatalogError,
    DimensionSampler,
    TopicSampler,
    WordSampler,
    load_dimensions,
    load_personas,
    load_story_words,
    load_styles,
    load_topics,
)


def test_shipped_catalogs_meet_their_sizes():
    topics = load_topics()
    assert len(topics) >= 100
    assert len({t.topic for t in topics}) == len(topics)
    assert len(set(load_personas())) >= 50
    assert {s.name for s in load_styles()} == {
        "textbook narrative",
        "textbook academic",
        "blogpost",
        "wikihow",
    }
    words = load_story_words()
    for kind in (words.verbs, words.nouns, words.adjectives):
        assert len(set(kind)) >= 100
    assert {f.name for f in words.features} >= {
        "dialogue",
        "plot twist",
        "bad ending",
        "moral value",
        "conflict",
        "foreshadowing",
    }
    dims = load_dimensions()
    assert len(dims) == 9
    assert {
        "Format",
        "Reasoning Explicitness",
        "Conceptual Complexity",
        "Ambiguity Level",
        "Style",
        "Content Focus",
        "Domain",
    } <= {d.name for d in dims}


def test_bad_topic_entry_names_file_and_entry(tmp_path):
    good = {"topic": "Tides", "subtopics": ["a", "b", "c"], "keywords": list("abcde")}
    bad = {"topic": "Volcanoes", "subtopics": ["only one"], "keywords": list("abcde")}
    path = tmp_path / "topics.json"
    path.write_text(json.dumps([good, bad]))
    with pytest.raises(CatalogError) as err:
        load_topics(path)
    msg = str(err.value)
    assert str(path) in msg and "topic 1" in msg and "Volcanoes" in msg and "subtopics" in msg


def test_missing_and_invalid_catalog_files(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_personas(tmp_path / "nope.json")
    broken = tmp_path / "styles.json"
    broken.write_text('[{"name": "x",')
    with pytest.raises(CatalogError, match=r"styles\.json: not valid JSON \(line 1"):
        load_styles(broken)


def test_dimension_shares_must_sum_to_one(tmp_path):
    dims = json.loads(json.dumps([d.model_dump() for d in load_dimensions()]))
    dims[2]["values"][0]["target_share"] += 0.1
    path = tmp_path / "dims.json"
    path.write_text(json.dumps(dims))
    with pytest.raises(CatalogError, match="dimension 2 .*sum to 1.1"):
        load_dimensions(path)


def test_user_catalog_replaces_shipped_one(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(["A sailor.", "A baker.", "A pilot."]))
    personas = load_personas(path)
    sampler = TopicSampler(personas=personas, n_personas=2, seed=1)
    for s in sampler.sample(20):
        assert set(s.data["personas"]) <= set(personas) and len(s.data["personas"]) == 2


def test_topic_sampler_is_seeded_and_index_addressed():
    a, b, c = TopicSampler(seed=7), TopicSampler(seed=7), TopicSampler(seed=8)
    draws = a.sample(30)
    assert [s.model_dump() for s in draws] == [s.model_dump() for s in b.sample(30)]
    assert [s.id for s in draws[10:20]] == [s.id for s in b.sample(10, start=10)]
    assert [s.data for s in draws] != [s.data for s in c.sample(30)]
    topics = {t.topic: t for t in a.topics}
    for s in draws:
        t = topics[s.data["topic"]]
        assert set(s.data["keywords"]) <= set(t.keywords) and len(s.data["keywords"]) == 5
        assert s.data["subtopics"] == t.subtopics
        assert s.data["style"]["name"] in {st.name for st in a.styles}
        assert len(set(s.data["personas"])) == 5
    assert len({s.id for s in draws}) == 30
    assert len({s.data["topic"] for s in a.sample(200)}) > 60  # spreads over the catalog


def test_multi_topic_draws_and_template_switches():
    s = TopicSampler(seed=3, n_topics=3, n_personas=0, use_style=False).draw(0)
    assert len(s.data["topics"]) == 3 and len({t["topic"] for t in s.data["topics"]}) == 3
    assert s.data["topic"] == s.data["topics"][0]["topic"]
    assert "style" not in s.data and "personas" not in s.data
    with pytest.raises(ValueError, match="n_topics"):
        TopicSampler(n_topics=0)


def test_dimension_sampler_follows_target_shares():
    sampler = DimensionSampler(seed=0)
    draws = sampler.sample(6000)
    for dim in sampler.dimensions:
        counts = Counter(d[dim.name] for d in draws)
        for v in dim.values:
            assert abs(counts[v.name] / len(draws) - v.target_share) < 0.025, (dim.name, v.name)
    assert draws[:50] == DimensionSampler(seed=0).sample(50)
    rows = sampler.details(draws[0])
    assert [r["dimension"] for r in rows] == [d.name for d in sampler.dimensions]
    assert all(r["instructions"] for r in rows)


def test_dimension_share_override_is_normalised_and_checked():
    sampler = DimensionSampler(seed=1, shares={"Ambiguity Level": {"High": 3, "Low": 1}})
    counts = Counter(d["Ambiguity Level"] for d in sampler.sample(2000))
    assert counts["Moderate"] == 0
    assert abs(counts["High"] / 2000 - 0.75) < 0.04
    with pytest.raises(ValueError, match="unknown values"):
        DimensionSampler(shares={"Style": {"Sarcastic": 1.0}})
    with pytest.raises(ValueError, match="unknown dimension"):
        DimensionSampler(shares={"Colour": {"Red": 1.0}})


def test_word_sampler():
    sampler = WordSampler(seed=5, min_features=1, max_features=2)
    words = sampler.words
    draws = sampler.sample(300)
    assert [d.data for d in draws[:20]] == [d.data for d in WordSampler(seed=5, max_features=2).sample(20)]
    for d in draws:
        assert d.data["verb"] in words.verbs and d.data["noun"] in words.nouns
        assert d.data["adjective"] in words.adjectives
        assert 1 <= len(d.data["features"]) <= 2
        assert len(d.data["feature_instructions"]) == len(d.data["features"])
    assert Counter(len(d.data["features"]) for d in draws).keys() == {1, 2}
    with pytest.raises(ValueError, match="max_features"):
        WordSampler(min_features=3, max_features=2)


def test_blank_persona_is_named(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(["A sailor.", "   "]))
    with pytest.raises(CatalogError, match="persona 1"):
        load_personas(path)
