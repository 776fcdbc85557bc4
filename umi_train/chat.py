"""The `chat` prompt format: a role's prompt rendered through the base model's own chat template.

An instruction-tuned model (SmolLM2-135M-Instruct: ChatML) has learned to answer inside its
chat template; α-UMi's raw text prompts (`--prompt-format alpha-umi`, the official recipe) are
new to it. In `chat` format a role example becomes one user message (the role's filled
template, without the trailing speaker tag such as `" assistant: "`, which the template's
assistant header replaces) and one assistant message (the target). Where the template takes
`tools=` (it mentions `tools`), the tool documentation lines of the prompt are passed as tools
(OpenAI function schemas) and left out of the message text; otherwise they stay in the text.

`--tool-docs compact` (either format) rewrites the `{doc}` block, one JSON object per tool, as
one line per tool and one per parameter (`- name: description` / `    arg (type): description`):
the tool documentation is 60-68% of a backbone, planner or caller prompt of the synthetic
world in SmolLM2 tokens, and its JSON quoting and escapes carry no information.

This module only renders text; `umi_train.encode` makes the ids and labels (the one place).
The assistant turn must end with the tokenizer's EOS token (ChatML's `<|im_end|>` is SmolLM2's
and Qwen2's EOS): generation stops there, so training supervises it; a template that ends the
assistant turn otherwise is refused with one line.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from umi_data.rendering.prompts import ROLE_SUFFIX

PromptFormat = Literal["alpha-umi", "chat"]
PROMPT_FORMATS: tuple[str, ...] = ("alpha-umi", "chat")
DOC_HEADER = "You have assess to the following apis:\n"
DOC_END = "The conversation history is:\n"
_PROBE = "\x00umi-probe\x00"
_CHECKED: set[tuple[str, str]] = set()


class ChatTemplateError(ValueError):
    """The tokenizer has no chat template, or one umi cannot train on (a one-line message)."""


def check_format(prompt_format: str) -> None:
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r}; expected one of {', '.join(PROMPT_FORMATS)}")


def _template(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        name = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
        raise ChatTemplateError(f"{name} has no chat template; --prompt-format chat needs an instruction-tuned model's tokenizer")
    return template if isinstance(template, str) else json.dumps(template)


def takes_tools(tokenizer: Any) -> bool:
    """Whether the chat template renders a `tools` argument (Qwen2.5, Llama 3.1, Mistral do)."""
    return "tools" in _template(tokenizer)


def _tool_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """α-UMi's short form `{Name, function, input: {arg: "type, description"}}` as an OpenAI
    function schema; a line of another shape is passed on as the function's description."""
    properties = {}
    for arg, text in (doc.get("input") or {}).items():
        kind, _, description = str(text).partition(", ")
        properties[arg] = {"type": kind or "string", "description": description}
    return {"type": "function", "function": {"name": str(doc.get("Name", "tool")), "description": str(doc.get("function", "")),
                                             "parameters": {"type": "object", "properties": properties}}}


def split_tools(content: str) -> tuple[str, list[dict[str, Any]]]:
    """(content without its tool documentation lines, the tools) when the prompt has the α-UMi
    `{doc}` block of JSON lines; (content, []) when it has none or a line is not JSON."""
    start = content.find(DOC_HEADER)
    end = content.find(DOC_END, start + len(DOC_HEADER)) if start >= 0 else -1
    if end < 0:
        return content, []
    lines = [line for line in content[start + len(DOC_HEADER):end].split("\n") if line.strip()]
    try:
        docs = [json.loads(line) for line in lines]
    except ValueError:
        return content, []
    if not all(isinstance(doc, dict) for doc in docs):
        return content, []
    return content[:start + len(DOC_HEADER)] + content[end:], [_tool_schema(doc) for doc in docs]


TOOL_DOCS: tuple[str, ...] = ("full", "compact")


def _compact_tool(doc: dict[str, Any]) -> str:
    lines = [f"- {doc.get('Name', 'tool')}: {doc.get('function', '')}".rstrip()]
    for arg, text in (doc.get("input") or {}).items():
        kind, _, description = str(text).partition(", ")
        lines.append(f"    {arg} ({kind or 'any'}): {description}".rstrip())
    return "\n".join(lines) + "\n"


def compact_tool_docs(input: str) -> str:
    """`input` with its α-UMi `{doc}` block (JSON lines) in the compact form; unchanged when it
    has no such block or a line of it is not a JSON object (then nothing is guessed)."""
    start = input.find(DOC_HEADER)
    end = input.find(DOC_END, start + len(DOC_HEADER)) if start >= 0 else -1
    if end < 0:
        return input
    try:
        docs = [json.loads(line) for line in input[start + len(DOC_HEADER):end].split("\n") if line.strip()]
    except ValueError:
        return input
    if not all(isinstance(doc, dict) for doc in docs):
        return input
    return input[:start + len(DOC_HEADER)] + "".join(_compact_tool(doc) for doc in docs) + input[end:]


def render_tools(input: str, tool_docs: str) -> str:
    """The role prompt with its tool documentation as `--tool-docs` asks (`full`: as written)."""
    if tool_docs not in TOOL_DOCS:
        raise ValueError(f"unknown tool docs {tool_docs!r}; expected one of {', '.join(TOOL_DOCS)}")
    return compact_tool_docs(input) if tool_docs == "compact" else input


def user_content(input: str) -> str:
    """The role prompt as the user message: without its trailing speaker tag."""
    for suffix in set(ROLE_SUFFIX.values()):
        if input.endswith(suffix):
            return input[: -len(suffix)]
    return input


def _messages(content: str, tokenizer: Any) -> tuple[list[dict[str, str]], dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if takes_tools(tokenizer):
        content, tools = split_tools(content)
    return [{"role": "user", "content": content}], ({"tools": tools} if tools else {})


def chat_prompt(content: str, tokenizer: Any) -> str:
    """The text before the assistant's answer: the template applied to the user message, with
    the generation prompt (the assistant header). `content` is already `user_content(...)`."""
    messages, extra = _messages(content, tokenizer)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)


def check_assistant_end(tokenizer: Any) -> None:
    """Refuse a template whose assistant turn does not continue the generation prompt or does
    not end with the tokenizer's EOS token (what generation stops at). Checked once per template."""
    key = (_template(tokenizer), tokenizer.eos_token)
    if key in _CHECKED:
        return
    messages, _ = _messages("question", tokenizer)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": _PROBE}], tokenize=False)
    if not full.startswith(prompt) or _PROBE not in full[len(prompt):]:
        raise ChatTemplateError("the chat template's assistant turn does not continue its generation prompt; use --prompt-format alpha-umi")
    after = full[full.index(_PROBE, len(prompt)) + len(_PROBE):]
    eos = tokenizer.eos_token
    if not eos or not after.startswith(eos):
        raise ChatTemplateError(f"the chat template ends an assistant turn with {after[:20]!r}, not the EOS token {eos!r}; "
                                "use --prompt-format alpha-umi")
    _CHECKED.add(key)


__all__ = ["PROMPT_FORMATS", "TOOL_DOCS", "compact_tool_docs", "render_tools", "ChatTemplateError", "PromptFormat", "chat_prompt", "check_assistant_end", "check_format",
           "split_tools", "takes_tools", "user_content"]
