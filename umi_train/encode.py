"""The one place where training labels are made: `(input, target)` -> `input_ids`, `labels`.

The loss covers the target and the end-of-sequence token only; every input token is labelled
-100. Input and target are tokenized separately, exactly as the model will see them at
generation time (prompt tokens, then generated tokens), so no token straddles the boundary.
When the example is too long the input loses tokens from its start (the official recipe
truncates from the left: the end of the history matters most); the target is never cut, and an
example whose target alone does not fit raises instead of training on nothing.

`prompt_format="chat"` renders the prompt through the model's chat template (`umi_train.chat`):
the ids are the template's text up to the assistant header, then the target and the EOS token
that ends the template's assistant turn; an over-long prompt loses tokens from the start of the
user message (the template's own tokens are kept). The labels are made here either way.
"""

from __future__ import annotations

from typing import Any, Literal

from umi_train.chat import ChatTemplateError, chat_prompt, check_assistant_end, check_format, render_tools, user_content

IGNORE_INDEX = -100
ALPHA_UMI_SYSTEM_PREFIX = "system: "
ALPHA_UMI_EOS_TEXT = "</s>"


class EncodingError(ValueError):
    """An example that cannot be trained on as asked; the message names the example."""


def _text_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _bos_ids(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer itself puts before a text: Llama's and Gemma's BOS; none
    for GPT-2, Qwen2 or SmolLM2 (whose `bos_token` is a chat-template marker, not a sequence start).
    Training sequences then start the way the model's pretraining sequences did."""
    plain, full = _text_ids(tokenizer, "a"), list(tokenizer("a")["input_ids"])
    start = next((i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain), 0)
    return full[:start]


def _target_ids(tokenizer: Any, target: str, compat: str | None, example_id: str) -> list[int]:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise EncodingError(f"{example_id}: the tokenizer has no EOS token, so the end of the target cannot be supervised")
    if compat == "alpha-umi":
        ids = _text_ids(tokenizer, target + ALPHA_UMI_EOS_TEXT)
        if not ids or ids[-1] != eos:
            raise EncodingError(
                f"{example_id}: compat alpha-umi appends the literal {ALPHA_UMI_EOS_TEXT!r}, which this tokenizer does not "
                f"read as its EOS token {tokenizer.eos_token!r}; train in the default mode instead"
            )
        return ids
    return _text_ids(tokenizer, target) + [eos]


def _check_modes(compat: str | None, prompt_format: str) -> None:
    check_format(prompt_format)
    if compat not in (None, "alpha-umi"):
        raise ValueError(f"unknown compat mode {compat!r}; expected None or 'alpha-umi'")
    if compat is not None and prompt_format == "chat":
        raise ValueError("compat alpha-umi is the official raw-text recipe; it does not combine with prompt format chat")


def encode_prompt(input: str, tokenizer: Any, *, compat: Literal["alpha-umi"] | None = None, prompt_format: str = "alpha-umi",
                  tool_docs: str = "full") -> list[int]:
    """The token ids a model trained by umi sees before generating: BOS (if the tokenizer uses
    one) and the prompt, as in training (without truncation); in chat format the chat
    template's text up to the assistant header (the template writes its own BOS)."""
    _check_modes(compat, prompt_format)
    input = render_tools(input, tool_docs)
    if prompt_format == "chat":
        return _text_ids(tokenizer, chat_prompt(user_content(input), tokenizer))
    prompt = ALPHA_UMI_SYSTEM_PREFIX + input if compat == "alpha-umi" else input
    return _bos_ids(tokenizer) + _text_ids(tokenizer, prompt)


def _fit_chat(input: str, tokenizer: Any, room: int, example_id: str) -> tuple[str, int]:
    """(the chat prompt text whose ids fit `room`, user-message tokens cut from its start)."""
    content, cut = user_content(input), 0
    text = chat_prompt(content, tokenizer)
    over = len(_text_ids(tokenizer, text)) - room
    while over > 0:
        offsets = tokenizer(content, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if over >= len(offsets):
            raise EncodingError(f"{example_id}: the chat template's own tokens and the target leave no room for the prompt; raise --max-length")
        content, cut = content[offsets[over][0]:], cut + over
        text = chat_prompt(content, tokenizer)
        over = len(_text_ids(tokenizer, text)) - room
    return text, cut


def fit_prompt(input: str, tokenizer: Any, max_tokens: int, *, compat: Literal["alpha-umi"] | None = None,
               prompt_format: str = "alpha-umi", tool_docs: str = "full") -> str:
    """The prompt text a model is given (the compat prefix included; in chat format the rendered
    template) whose `encode_prompt` fits `max_tokens`: cut from the left, as training cuts, at a
    token boundary of the text.

    Cutting the text rather than the ids lets a server that tokenizes the text itself (an
    OpenAI-compatible endpoint) see exactly the tokens a local model sees: both encode this text."""
    _check_modes(compat, prompt_format)
    input = render_tools(input, tool_docs)
    if prompt_format == "chat":
        return _fit_chat(input, tokenizer, max_tokens, "<prompt>")[0]
    text = ALPHA_UMI_SYSTEM_PREFIX + input if compat == "alpha-umi" else input
    room = max(max_tokens - len(_bos_ids(tokenizer)), 1)
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    first = len(offsets) - room
    while 0 < first < len(offsets) - 1 and len(_text_ids(tokenizer, text[offsets[first][0]:])) > room:
        first += 1  # a character split over tokens can re-tokenize longer from the cut: cut further
    return text[offsets[first][0]:] if first > 0 else text


def encode(
    input: str,
    target: str,
    tokenizer: Any,
    max_length: int,
    *,
    compat: Literal["alpha-umi"] | None = None,
    prompt_format: str = "alpha-umi",
    tool_docs: str = "full",
    example_id: str = "<example>",
) -> dict[str, Any]:
    """`input_ids` and `labels` (-100 except on the target and its EOS) of one example, and
    `truncated`: how many input tokens were cut from the start to fit `max_length`."""
    _check_modes(compat, prompt_format)
    input = render_tools(input, tool_docs)
    chat = prompt_format == "chat"
    bos, target_ids = ([] if chat else _bos_ids(tokenizer)), _target_ids(tokenizer, target, compat, example_id)
    room = max_length - len(bos) - len(target_ids)
    if room < 0:
        raise EncodingError(
            f"{example_id}: the target alone is {len(target_ids)} tokens (with EOS{' and BOS' if bos else ''}), "
            f"more than max_length {max_length}; raise --max-length or drop the example"
        )
    if chat:
        try:
            check_assistant_end(tokenizer)
        except ChatTemplateError as exc:
            raise EncodingError(f"{example_id}: {exc}") from None
        text, truncated = _fit_chat(input, tokenizer, room, example_id)
        prefix = _text_ids(tokenizer, text)
    else:
        input_ids = encode_prompt(input, tokenizer, compat=compat)[len(bos):]
        truncated = max(0, len(input_ids) - room)
        prefix = bos + input_ids[truncated:]
    encoded = {"input_ids": prefix + target_ids, "labels": [IGNORE_INDEX] * len(prefix) + target_ids}
    check_labels(encoded, tokenizer.eos_token_id, example_id)
    return {**encoded, "truncated": truncated}


def check_labels(encoded: dict[str, list[int]], eos_token_id: int, example_id: str) -> None:
    """The masking invariants every training example must satisfy (raise, naming the example)."""
    input_ids, labels = encoded["input_ids"], encoded["labels"]
    if len(input_ids) != len(labels):
        raise EncodingError(f"{example_id}: {len(input_ids)} input_ids but {len(labels)} labels")
    if all(label == IGNORE_INDEX for label in labels):
        raise EncodingError(f"{example_id}: no supervised token")
    if labels[-1] != eos_token_id:
        raise EncodingError(f"{example_id}: the final EOS token is not supervised")
    if any(label not in (IGNORE_INDEX, token) for label, token in zip(labels, input_ids)):
        raise EncodingError(f"{example_id}: a label differs from its input token")


def render_mask(encoded: dict[str, list[int]], tokenizer: Any, prompt_head: int | None = None, prompt_tail: int = 8) -> str:
    """One line per token: position, `L` (supervised) or `.` (masked), id and text.

    What the golden mask files hold: the exact boundary between prompt and target is visible.
    With `prompt_head`, only the first `prompt_head` and the last `prompt_tail` prompt tokens
    are listed (the middle of a long prompt says nothing about the mask)."""
    labels = encoded["labels"]
    prompt_length = next(index for index, label in enumerate(labels) if label != IGNORE_INDEX)
    lines = []
    for position, (token, label) in enumerate(zip(encoded["input_ids"], labels)):
        if prompt_head is not None and prompt_head <= position < prompt_length - prompt_tail:
            if position == prompt_head:
                lines.append(f"  ... {prompt_length - prompt_tail - prompt_head} masked prompt tokens")
            continue
        text = tokenizer.decode([token], clean_up_tokenization_spaces=False)
        lines.append(f"{position:5d} {'L' if label != IGNORE_INDEX else '.'} {token:6d} {text!r}")
    return "\n".join(lines) + "\n"
