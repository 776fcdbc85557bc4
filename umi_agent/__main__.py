"""`python -m umi_agent COMMAND ...` (console script `umi-agent`): the agent and evaluation
commands; each is also its own module entry point, `python -m umi_agent.COMMAND`."""

from __future__ import annotations

import sys

from umi_data.plumbing.cli import dispatch

COMMANDS = {
    "predict": "static (teacher-forced) predictions of a run on a stage-2 test file",
    "evaluate": "the paper's step-level metrics (Plan ACC, Act. EM, Hallu., Arg. F1, ROUGE-L) of a predictions file",
    "run": "live episodes of one or more runs against the synthetic world's tools, side by side",
    "passrate": "StableToolBench's pass rate (ToolEval, any OpenAI-compatible judge) and win rate of ToolBench answer files",
    "toolserver": "serve a tool response cache (python -m umi_data tool-cache) with StableToolBench's /virtual contract",
    "curves": "learning curves: runs evaluated at their checkpoints, static and live (curves.json, curves.png)",
    "demo": "the whole pipeline end to end on CPU: synthetic world -> corpus -> tiny GLPFT -> evaluation",
    "reproduce": "the paper's Table 1 at small scale: every setup trained, predicted, evaluated and charted (make reproduce)",
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("umi_agent", "umi-agent", "Run and evaluate planner / caller / summarizer agents trained by umi.", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
