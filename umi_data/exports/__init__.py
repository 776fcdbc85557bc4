"""Exports: a corpus in other tools' formats (`umi-data export`).

`export` (role corpora as JSONL, Parquet or a Hugging Face dataset), `chat` (one trajectory or
role example as chat messages with tool calls: the only mapping), `chat_formats` (those messages
as OpenAI, TRL, LLaMA-Factory ShareGPT and Hermes records) and `chat_export` (the command that
writes them, with every example a format cannot express counted as a reject).
"""
