"""The one prompt builder: plain text and chat template, system prompt, few-shot from train only."""

from __future__ import annotations

import pytest

from soup_search.errors import ObjectiveError
from soup_search.objectives import get_objective
from soup_search.objectives.base import Example
from soup_search.objectives.prompting import Prompting
from soup_search.scoring.prompts import continuation_ids, encode_text, prompt_ids, uses_chat_template
from soup_search.zoo.tokenizer import build_char_tokenizer

#: a chat template in the usual shape: it writes its own BOS, one tag per turn, then the assistant's tag
CHAT = ("{{ bos_token }}{% for m in messages %}[{{ m['role'][0] }}]{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[a]{% endif %}")


@pytest.fixture()
def tok():
    return build_char_tokenizer()


@pytest.fixture()
def chat_tok():
    tok = build_char_tokenizer()
    tok.chat_template = CHAT
    return tok


def text_of(tok, ids):
    return tok.decode(ids)


def test_a_plain_prompt_is_bos_then_the_text(tok):
    toy = get_objective("toy", n_dev=3, chat_template=False)
    ex = toy.examples("dev")[0]
    ids = prompt_ids(tok, toy, ex)
    assert ids == encode_text(tok, ex.prompt) and ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert text_of(tok, ids) == "<s>" + ex.prompt


def test_system_prompt_and_few_shot_in_plain_text(tok):
    toy = get_objective("toy", n_dev=3, fewshot=2, fewshot_seed=5, system_prompt="be exact")
    ex = toy.examples("dev")[0]
    shots = toy.shots(ex)
    assert len(shots) == 2 and all(s.category == ex.category for s in shots)
    # the toy's delimiters: the answer follows the "=" at once, shots are separated by a space
    want = "<s>be exact " + "".join(f"{s.prompt}{s.answer} " for s in shots) + ex.prompt
    assert text_of(tok, prompt_ids(tok, toy, ex)) == want


def test_few_shot_examples_come_from_train_only_and_follow_the_seed(tok):
    toy = get_objective("toy", n_dev=20, n_test=20, n_train=50, fewshot=3)
    train = {e.prompt for e in toy.examples("train")}
    held = {e.prompt for e in toy.examples("dev")} | {e.prompt for e in toy.examples("test", held_out=True)}
    drawn = [s for ex in toy.examples("dev") + toy.examples("test", held_out=True) for s in toy.shots(ex)]
    assert {s.prompt for s in drawn} <= train and not {s.prompt for s in drawn} & held
    ex = toy.examples("dev")[0]
    again = get_objective("toy", n_dev=20, n_test=20, n_train=50, fewshot=3)
    assert again.shots(ex) == toy.shots(ex)  # the same in every process
    other = get_objective("toy", n_dev=20, n_test=20, n_train=50, fewshot=3, fewshot_seed=1)
    assert [other.shots(e) for e in toy.examples("dev")] != [toy.shots(e) for e in toy.examples("dev")]


def test_few_shot_never_shows_a_held_out_category(tok):
    toy = get_objective("toy", categories=["add", "sub"], n_train=2, fewshot=2).hold_out(["sub"])
    # add has too few train rows of its own: the pool is every train row the search may see (add's)
    with pytest.raises(ObjectiveError, match="fewshot: 2 needs more train examples"):
        toy.shots(toy.examples("dev")[0])


def test_a_chat_prompt_renders_the_template_with_turns_and_one_bos(chat_tok):
    toy = get_objective("toy", n_dev=3, fewshot=1, system_prompt="hi")
    ex = toy.examples("dev")[0]
    (shot,) = toy.shots(ex)
    ids = prompt_ids(chat_tok, toy, ex)
    assert text_of(chat_tok, ids) == f"<s>[s]hi[u]{shot.prompt}[a]{shot.answer}[u]{ex.prompt}[a]"
    assert ids.count(chat_tok.bos_token_id) == 1  # the template's own "<s>" text is the BOS token
    # a choice follows the assistant's tag directly, without the plain-text target delimiter
    assert continuation_ids(chat_tok, Prompting(target_delimiter=" "), "12") == chat_tok("12")["input_ids"]


def test_chat_template_modes(tok, chat_tok):
    assert uses_chat_template(chat_tok, Prompting(chat_template="auto"))
    assert not uses_chat_template(tok, Prompting(chat_template="auto"))
    assert not uses_chat_template(chat_tok, Prompting(chat_template=False))
    with pytest.raises(ObjectiveError, match="chat_template: true, but the model's tokenizer has no chat template"):
        uses_chat_template(tok, Prompting(chat_template=True))


@pytest.mark.parametrize(("params", "needle"), [
    ({"chat_template": "yes"}, "chat_template is 'yes'; use true, false or auto"),
    ({"fewshot": -1}, "fewshot is -1; use a whole number >= 0"),
    ({"fewshot": True}, "fewshot is True"),
    ({"stop": ["", "x"]}, "stop is"),
    ({"choice_norm": "bytes"}, "choice_norm is 'bytes'; use one of none, tokens, chars"),
])
def test_bad_prompting_parameters_are_one_line_errors(params, needle):
    with pytest.raises(ObjectiveError, match=needle) as err:
        get_objective("toy", **params)
    assert "\n" not in str(err.value)


def test_prompting_parameters_are_reported_together():
    with pytest.raises(ObjectiveError) as err:
        get_objective("toy", fewshot=-1, choice_norm="x", n_devv=1)
    message = str(err.value)
    assert "fewshot is -1" in message and "choice_norm is 'x'" in message and "unknown parameter 'n_devv'" in message


def test_a_plain_continuation_is_the_delimiter_then_the_choice(tok):
    assert continuation_ids(tok, Prompting(target_delimiter=" "), "12") == tok(" 12")["input_ids"]
    assert continuation_ids(tok, Prompting(target_delimiter=""), "12") == tok("12")["input_ids"]


def test_multiple_choice_toy_examples_hold_their_answer():
    toy = get_objective("toy", n_dev=30, choices=4)
    examples = toy.examples("dev")
    assert all(e.answer in e.choices and len(set(e.choices)) == len(e.choices) for e in examples)
    assert {len(e.choices) for e in examples if e.category == "add"} == {4}
    # a category with fewer distinct answers offers all it has: parity's are even and odd
    assert {len(e.choices) for e in examples if e.category == "parity"} == {2}
    assert toy.score_example(examples[0], examples[0].answer) == 1.0
    wrong = next(c for c in examples[0].choices if c != examples[0].answer)
    assert toy.score_example(examples[0], wrong) == 0.0
    with pytest.raises(ObjectiveError, match="choices must be 0 .* or >= 2"):
        get_objective("toy", choices=1)


def test_example_choices_default_to_none():
    assert Example("p", "a", "c").choices == ()
