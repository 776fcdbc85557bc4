"""Chat templates umi ships for training on chat exports (`--format trl-chat`) with TRL.

TRL's `assistant_only_loss=True` needs `{% generation %}` markers in the tokenizer's chat template
and refuses a template it does not know; `smollm2_tools.jinja` is SmolLM2-Instruct's template
(byte-identical output for chats without tools) with tool schemas, tool calls, tool results and
the markers around every assistant turn, end-of-turn token included. Any ChatML tokenizer
(`<|im_start|>`/`<|im_end|>`, e.g. Qwen2.5's) can use it too. Use:

    tokenizer.chat_template = umi_train.templates.chat_template("smollm2-tools")
    SFTTrainer(..., args=SFTConfig(assistant_only_loss=True, ...), processing_class=tokenizer)
"""

from __future__ import annotations

from importlib import resources

TEMPLATES = {"smollm2-tools": "smollm2_tools.jinja"}


def chat_template(name: str = "smollm2-tools") -> str:
    """The text of a shipped chat template."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; choose one of: {', '.join(TEMPLATES)}")
    return (resources.files(__package__) / TEMPLATES[name]).read_text(encoding="utf-8")


__all__ = ["TEMPLATES", "chat_template"]
