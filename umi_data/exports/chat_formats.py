"""The four chat formats, each a re-encoding of `umi_data.exports.chat.ChatExample` (../shared/TOOLCALLING.md).

- `openai`: OpenAI's chat fine-tuning line `{"messages", "tools"?}`: assistant `tool_calls` with
  the raw argument string, `tool` results linked by `tool_call_id`. Checked against OpenAI's
  documented limits: function names `^[a-zA-Z0-9_-]{1,64}$`, at most 128 tools, an example of at
  most `max_tokens` tokens (OpenAI truncates longer ones from the end, cutting the answer),
  counted by an upper bound (UTF-8 bytes of every string the model reads, plus 8 a message:
  a byte-level BPE token covers at least one byte), and a file of at most 512 MB.
- `trl-chat`: `{"id", "messages", "tools"}` for TRL's conversational datasets: tool-call
  `arguments` as an object (transformers chat templates `tojson` them), `tool` results keep
  `tool_call_id` and the function `name`.
- `llamafactory-sharegpt`: `{"conversations": [{"from", "value"}], "system", "tools"}`:
  `function_call` values are the JSON of `{"name", "arguments": {...}}` (a list for parallel
  calls), a thought before the call goes in LLaMA-Factory's thought block `<think>\\n…\\n</think>\\n\\n`
  (its default `thought_words`; FunctionFormatter cuts it off before parsing the JSON), and so does
  the thought that decided to answer, before the answer in the final `gpt` turn;
  the results of one message's calls are one `observation` (several joined as LLaMA-Factory's
  own OpenAI converter joins them, `\\n</tool_response>\\n<tool_response>\\n`); `tools` is the JSON
  text of the bare schemas. LLaMA-Factory skips (with only a warning) an example whose roles do
  not alternate (human|observation, then gpt|function_call, ending on the latter): those are
  `role_order` rejects here.
- `hermes`: NousResearch's ShareGPT rows `{"id", "conversations", "text"}`: roles system / human /
  gpt / tool; the system message lists the tools in `<tools></tools>`; calls are
  `<tool_call>\\n{"name", "arguments"}\\n</tool_call>` blocks after the thought; results
  `<tool_response>\\n{"name", "content"}\\n</tool_response>` blocks; `text` is the same chat in
  ChatML (`<|im_start|>role\\n…<|im_end|>\\n`, results in a `tool` turn).

Formats but openai need the arguments as a JSON object: other argument strings are
`arguments_not_object` rejects there, and the raw string's spacing is not kept. An assistant text
holding the format's own markup (`</think>` for llamafactory-sharegpt, `<tool_call>` for hermes)
would be cut apart by its parser: `markup_in_text`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from umi_data.exports.chat import ChatExample, ChatReject

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OPENAI_MAX_TOOLS = 128
OPENAI_MAX_FILE_BYTES = 512 * 1024 * 1024
#: The training-example context of OpenAI's tunable gpt-4o / gpt-4o-mini / gpt-4.1 models.
OPENAI_MAX_TOKENS = 65_536
#: Per-message overhead in the token bound (OpenAI's own count is 3-4 tokens a message).
MESSAGE_OVERHEAD = 8
LLAMAFACTORY_THOUGHT = ("<think>\n", "\n</think>\n\n")
LLAMAFACTORY_RESULT_JOIN = "\n</tool_response>\n<tool_response>\n"
HERMES_PREAMBLE = (
    "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. "
    "You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug "
    "into functions. Here are the available tools: <tools>\n"
)
HERMES_CALL_FORMAT = (
    "\n</tools>\nFor each function call return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags as follows:\n<tool_call>\n{"name": <function-name>, "arguments": <args-dict>}\n</tool_call>'
)
HERMES_ROLE = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}
CHATML_ROLE = {"system": "system", "human": "user", "gpt": "assistant", "tool": "tool"}


def arguments_object(raw: str, name: str) -> dict[str, Any]:
    """A call's arguments as an object, for the formats that need one; else `ChatReject`."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise ChatReject("arguments_not_object", f"the arguments of the call to {name[:64]!r} are not a JSON object: {raw[:80]!r}")
    return value


def _object_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": c["function"]["name"], "arguments": arguments_object(c["function"]["arguments"], c["function"]["name"])}
            for c in message["tool_calls"]]


# --- openai -----------------------------------------------------------------------------------


def openai_record(example: ChatExample, max_tokens: int = OPENAI_MAX_TOKENS) -> dict[str, Any]:
    messages = [{k: v for k, v in m.items() if k != "name"} if m["role"] == "tool" else m for m in example.messages]
    for name in _openai_names(example):
        if not OPENAI_NAME.match(name):
            raise ChatReject("name_not_allowed", f"OpenAI allows function names of 1-64 letters, digits, _ and -: {name[:80]!r}")
    if len(example.tools) > OPENAI_MAX_TOOLS:
        raise ChatReject("too_many_tools", f"{len(example.tools)} tools, OpenAI allows {OPENAI_MAX_TOOLS}")
    bound = token_bound(example)
    if bound > max_tokens:
        raise ChatReject("too_long", f"up to {bound} tokens (UTF-8 bytes + {MESSAGE_OVERHEAD} a message), over the limit of {max_tokens}")
    return {"messages": messages, "tools": example.tools} if example.tools else {"messages": messages}


def _openai_names(example: ChatExample) -> list[str]:
    calls = [c["function"]["name"] for m in example.messages for c in m.get("tool_calls", [])]
    return [tool["function"]["name"] for tool in example.tools] + calls


def token_bound(example: ChatExample) -> int:
    """An upper bound of the example's tokens for any byte-level BPE tokenizer (OpenAI's are)."""
    size = len(json.dumps(example.tools, ensure_ascii=False).encode()) if example.tools else 0
    for message in example.messages:
        size += MESSAGE_OVERHEAD + len((message.get("content") or "").encode())
        for call in message.get("tool_calls", []):
            size += MESSAGE_OVERHEAD + len(call["function"]["name"].encode()) + len(call["function"]["arguments"].encode())
    return size


# --- trl --------------------------------------------------------------------------------------


def trl_record(example: ChatExample) -> dict[str, Any]:
    messages = []
    for message in example.messages:
        if "tool_calls" in message:
            calls = [{"type": "function", "function": call} for call in _object_calls(message)]
            message = {**message, "tool_calls": [{"id": c["id"], **o} for c, o in zip(message["tool_calls"], calls)]}
        messages.append(message)
    return {"id": example.id, "messages": messages, "tools": example.tools}


# --- llamafactory -----------------------------------------------------------------------------


def sharegpt_record(example: ChatExample) -> dict[str, Any]:
    system = ""
    conversations: list[dict[str, str]] = []
    for message in example.messages:
        if message["role"] == "assistant":
            _no_markup(message.get("content"), (LLAMAFACTORY_THOUGHT[1].strip(),), "LLaMA-Factory")
    for message in _answer_with_thought(example.messages):
        role = message["role"]
        if role == "system":
            system = message["content"]
        elif role == "user":
            conversations.append({"from": "human", "value": message["content"]})
        elif role == "tool":
            _add_result(conversations, message["content"])
        elif "tool_calls" in message:
            conversations.append({"from": "function_call", "value": _sharegpt_call(message)})
        else:
            conversations.append({"from": "gpt", "value": message["content"]})
    _check_alternation(conversations)
    tools = json.dumps([tool["function"] for tool in example.tools], ensure_ascii=False) if example.tools else ""
    return {"conversations": conversations, "system": system, "tools": tools}


def _no_markup(text: str | None, tags: tuple[str, ...], fmt: str) -> None:
    """A text holding the format's own markup would be cut apart where the format parses it."""
    found = next((tag for tag in tags if text and tag in text), None)
    if found is not None:
        raise ChatReject("markup_in_text", f"a message holds {found!r}, which {fmt} reads as its own markup")


def _answer_with_thought(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The thought that decided to answer, in the thought block of the answer's `gpt` turn: two
    `gpt` turns in a row are an example LLaMA-Factory skips."""
    if len(messages) < 2 or not all(m["role"] == "assistant" and "tool_calls" not in m for m in messages[-2:]):
        return messages
    thought, answer = messages[-2]["content"], messages[-1]["content"]
    return [*messages[:-2], {"role": "assistant", "content": f"{LLAMAFACTORY_THOUGHT[0]}{thought}{LLAMAFACTORY_THOUGHT[1]}{answer}"}]


def _sharegpt_call(message: dict[str, Any]) -> str:
    calls = _object_calls(message)
    text = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
    thought = message.get("content")
    return f"{LLAMAFACTORY_THOUGHT[0]}{thought}{LLAMAFACTORY_THOUGHT[1]}{text}" if thought else text


def _add_result(conversations: list[dict[str, str]], content: str) -> None:
    if conversations and conversations[-1]["from"] == "observation":
        conversations[-1]["value"] += LLAMAFACTORY_RESULT_JOIN + content
    else:
        conversations.append({"from": "observation", "value": content})


def _check_alternation(conversations: list[dict[str, str]]) -> None:
    for index, turn in enumerate(conversations):
        allowed = ("human", "observation") if index % 2 == 0 else ("gpt", "function_call")
        if turn["from"] not in allowed:
            raise ChatReject("role_order", f"turn {index} is {turn['from']}, LLaMA-Factory needs {' or '.join(allowed)} there "
                             "(it skips such an example)")
    if len(conversations) % 2:
        raise ChatReject("role_order", "the conversation ends on an input turn (LLaMA-Factory skips such an example)")


# --- hermes -----------------------------------------------------------------------------------


def hermes_record(example: ChatExample) -> dict[str, Any]:
    conversations: list[dict[str, str]] = []
    for message in example.messages:
        if message["role"] == "assistant":
            _no_markup(message.get("content"), ("<tool_call>", "</tool_call>"), "Hermes")
        role = HERMES_ROLE[message["role"]]
        if role == "tool" and conversations and conversations[-1]["from"] == "tool":
            conversations[-1]["value"] += "\n" + _hermes_result(message)
            continue
        conversations.append({"from": role, "value": _hermes_value(message, example)})
    text = "".join(f"<|im_start|>{CHATML_ROLE[t['from']]}\n{t['value']}<|im_end|>\n" for t in conversations)
    return {"id": example.id, "conversations": conversations, "text": text}


def hermes_system(content: str, tools: list[dict[str, Any]]) -> str:
    if not tools:
        return content
    return f"{content}\n\n{HERMES_PREAMBLE}{json.dumps(tools, ensure_ascii=False)}{HERMES_CALL_FORMAT}"


def _hermes_value(message: dict[str, Any], example: ChatExample) -> str:
    role = message["role"]
    if role == "system":
        return hermes_system(message["content"], example.tools)
    if role == "tool":
        return _hermes_result(message)
    if "tool_calls" not in message:
        return message["content"]
    blocks = [f"<tool_call>\n{json.dumps(call, ensure_ascii=False)}\n</tool_call>" for call in _object_calls(message)]
    thought = message.get("content")
    return "\n".join([thought, *blocks] if thought else blocks)


def _hermes_result(message: dict[str, Any]) -> str:
    body = json.dumps({"name": message["name"], "content": message["content"]}, ensure_ascii=False)
    return f"<tool_response>\n{body}\n</tool_response>"


#: format name -> (record function, file suffix: "" for a dataset directory).
RECORDS: dict[str, Callable[..., dict[str, Any]]] = {
    "openai": openai_record,
    "trl-chat": trl_record,
    "llamafactory-sharegpt": sharegpt_record,
    "hermes": hermes_record,
}

__all__ = [
    "OPENAI_MAX_FILE_BYTES", "OPENAI_MAX_TOKENS", "RECORDS", "arguments_object", "hermes_record", "hermes_system",
    "openai_record", "sharegpt_record", "token_bound", "trl_record",
]
