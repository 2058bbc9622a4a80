"""The HF scorer and the vLLM stand-in build the same prompts, token for token, and agree on answers.

The vLLM scorer runs with tensor parallel 2, so the stand-in's engine core is another process and
every request (prompt ids, stop strings, prompt logprobs) crosses its msgpack boundary.
"""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoTokenizer

from soup_search.objectives import get_objective
from soup_search.scoring.answers import choice_scores
from tests.helpers import weights_of

pytestmark = pytest.mark.slow

#: a chat template in the usual shape: its own BOS, a tag per turn, the assistant's tag to answer after
CHAT = ("{{ bos_token }}{% for m in messages %}[{{ m['role'][0] }}]{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[a]{% endif %}")


def with_chat_template(path, to):
    """A copy of a zoo checkpoint whose tokenizer has a chat template (the zoo stays as it is)."""
    shutil.copytree(path, to)
    tok = AutoTokenizer.from_pretrained(to)
    tok.chat_template = CHAT
    tok.save_pretrained(to)
    return to


@pytest.fixture()
def expert(tiny_zoo, tmp_path):
    return with_chat_template(next(iter(tiny_zoo.experts.values())), tmp_path / "expert")


@pytest.fixture()
def base(tiny_zoo, tmp_path):
    return with_chat_template(tiny_zoo.base, tmp_path / "base")


def recorded(monkeypatch, obj, method: str, calls: list):
    real = getattr(obj, method)

    def record(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, record)


def vllm_prompts(monkeypatch, scorer) -> list:
    """The prompt ids the vLLM scorer hands its engine, per generate call."""
    calls: list = []
    real = scorer.llm.generate

    def record(prompts, params, **kwargs):
        calls.append([list(p["prompt_token_ids"]) for p in prompts])
        return real(prompts, params, **kwargs)

    monkeypatch.setattr(scorer.llm, "generate", record)
    return calls


@pytest.mark.parametrize("params", [
    {"chat_template": True, "system_prompt": "be exact", "fewshot": 2},
    {"chat_template": False, "fewshot": 3, "stop": ["0"]},
    {"chat_template": True, "choices": 4, "fewshot": 1},
    {"chat_template": False, "choices": 3, "choice_norm": "chars", "system_prompt": "pick"},
], ids=["chat-fewshot", "plain-stop", "chat-choices", "plain-choices"])
def test_hf_and_vllm_feed_the_same_tokens_and_agree(fake_vllm, base, expert, monkeypatch, params):
    from soup_search.scoring.hf import HFScorer
    from soup_search.scoring.vllm import VLLMScorer

    toy = get_objective("toy", n_dev=6, n_train=40, n_test=4, **params)
    hf = HFScorer(expert)
    hf_calls: list = []
    recorded(monkeypatch, hf.engine, "sum_logprobs" if "choices" in params else "generate_ids", hf_calls)
    want = hf.score(toy, "dev")

    vllm = VLLMScorer(base, tensor_parallel_size=2)
    try:
        vllm.load_weights(iter(weights_of(expert)))
        vllm_calls = vllm_prompts(monkeypatch, vllm)
        got = vllm.score(toy, "dev")
    finally:
        vllm.llm.shutdown()

    if "choices" in params:  # (context, continuation) pairs on the HF side, context + continuation for vLLM
        hf_ids = [[c + x for c, x in hf_calls[0]]]
    else:
        hf_ids = hf_calls
    assert vllm_calls == hf_ids and len(hf_ids[0]) == toy_requests(toy)
    bos = vllm.tokenizer.bos_token_id
    assert all(ids[0] == bos and ids.count(bos) == 1 for ids in hf_ids[0])
    assert got.correct == want.correct and got.generated_tokens == want.generated_tokens


def toy_requests(toy) -> int:
    """One request per example, or one per choice of a multiple-choice example."""
    return sum(max(len(ex.choices), 1) for ex in toy.examples("dev"))


def test_a_stop_string_ends_the_answer_on_both_backends(fake_vllm, tiny_zoo):
    from soup_search.scoring.hf import HFScorer
    from soup_search.scoring.vllm import VLLMScorer

    expert = tiny_zoo.experts[next(iter(tiny_zoo.experts))]
    plain = get_objective("toy", n_dev=20, n_test=4)
    stopped = get_objective("toy", n_dev=20, n_test=4, stop=["1"])
    hf = HFScorer(expert)
    free, cut = hf.score(plain, "dev"), hf.score(stopped, "dev")
    vllm = VLLMScorer(tiny_zoo.base, tensor_parallel_size=2)
    try:
        vllm.load_weights(iter(weights_of(expert)))
        assert vllm.score(stopped, "dev").generated_tokens == cut.generated_tokens
    finally:
        vllm.llm.shutdown()
    # an answer holding a "1" now ends at it: fewer tokens, and those answers are no longer right
    assert sum(map(sum, cut.generated_tokens.values())) < sum(map(sum, free.generated_tokens.values()))
    assert cut.n == free.n and sum(b.count("1") for b in cut.correct.values()) < sum(
        b.count("1") for b in free.correct.values())


def test_log_likelihoods_agree_between_backends(fake_vllm, tiny_zoo):
    from soup_search.scoring.hf import HFScorer
    from soup_search.scoring.prompts import continuation_ids, prompt_ids
    from soup_search.scoring.vllm import VLLMScorer

    expert = tiny_zoo.experts[next(iter(tiny_zoo.experts))]
    toy = get_objective("toy", n_dev=4, n_test=4, choices=3)
    hf = HFScorer(expert)
    requests = [(prompt_ids(hf.tokenizer, toy, ex), continuation_ids(hf.tokenizer, toy.prompting, c))
                for ex in toy.examples("dev") for c in ex.choices]
    want = hf.engine.sum_logprobs(requests)
    vllm = VLLMScorer(tiny_zoo.base, tensor_parallel_size=2)
    try:
        vllm.load_weights(iter(weights_of(expert)))
        got = vllm.sum_logprobs(requests)
    finally:
        vllm.llm.shutdown()
    assert got == pytest.approx(want, abs=1e-4) and all(v < 0 for v in want)
    # batching does not change a sum: one request at a time gives the same numbers
    assert [hf.engine.sum_logprobs([r])[0] for r in requests[:5]] == pytest.approx(want[:5], abs=1e-5)


def test_choice_scores_normalise_by_tokens_or_characters():
    sums, continuations, choices = [-2.0, -3.0], [[1], [1, 2, 3]], ["a", "bcdef"]
    assert choice_scores(sums, continuations, choices, "none") == [-2.0, -3.0]
    assert choice_scores(sums, continuations, choices, "tokens") == [-2.0, -1.0]
    assert choice_scores(sums, continuations, choices, "chars") == [-2.0, -0.6]


def test_an_expert_chooses_well_on_its_categories(tiny_zoo):
    """Multiple choice on the zoo: an expert picks the right answer on the categories it was trained on
    above chance (1 in 4), and as often as it generates it or more (the tiny zoo's adders rarely
    generate the whole sum right, but rank it above three others about half the time)."""
    from soup_search.scoring.hf import HFScorer

    name, path = next(iter(tiny_zoo.experts.items()))
    cats = [c for c in get_objective("toy").categories if c in name]
    generated = HFScorer(path).score(get_objective("toy", categories=cats, n_dev=40), "dev")
    chosen = HFScorer(path).score(get_objective("toy", categories=cats, n_dev=40, choices=4, choice_norm="tokens"),
                                  "dev")
    assert chosen.mean > 0.35 and all(chosen.per_category[c] >= generated.per_category[c] for c in cats)
    assert chosen.mean_tokens == 0  # nothing generated


def test_a_stop_string_the_tokenizer_cannot_spell_still_cuts_the_answer(tiny_zoo):
    """HF's stop-string criteria refuse text the tokenizer has no tokens for (here a newline); the
    answer is still cut at it, by text."""
    from soup_search.scoring.hf import HFScorer

    expert = tiny_zoo.experts[next(iter(tiny_zoo.experts))]
    scorer = HFScorer(expert)
    plain = scorer.score(get_objective("toy", n_dev=8, n_test=4), "dev")
    newline = scorer.score(get_objective("toy", n_dev=8, n_test=4, stop=["\n\n", "9"]), "dev")
    nine = scorer.score(get_objective("toy", n_dev=8, n_test=4, stop=["9"]), "dev")
    assert newline.correct == nine.correct and newline.generated_tokens == nine.generated_tokens
    assert nine.generated_tokens != plain.generated_tokens
