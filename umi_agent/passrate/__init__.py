"""StableToolBench's pass rate and win rate of ToolBench answer files (ToolEval, with any
OpenAI-compatible judge). Stdlib, pydantic and the `openai` client only (no torch).

    python -m umi_agent.passrate convert ANSWER_DIR --method M --out FILE
    python -m umi_agent.passrate ANSWERS_OR_CONVERTED... --judge-url URL --judge-model M --out DIR

API: `convert.convert_dir(dir, method)` -> `Conversion` (`.dump()` is the converted-answer JSON);
`convert.convert_answer(data, method, rng)` -> `Converted`; `score.verdicts(examples, judge, rounds)`
-> {qid: [Verdict per round]}; `score.score(verdicts, rounds)` -> `Score` (pass rate, std);
`judge.Judge(JudgeConfig(url=..., model=...), cache_file)`; `preference.compare(...)`.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from umi_agent.passrate.cli import main as run

    return run(argv)
