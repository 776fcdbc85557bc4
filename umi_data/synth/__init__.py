"""umi's synthetic tool world: deterministic tools, generated tasks, and scripted trajectories
written as ToolBench answer files (`python -m umi_data synth`).

The project cannot ship third-party datasets, so its demo and benchmarks use data made here.
Pure Python (stdlib + orjson): importing it loads no model library.

- `WORLD`, `tool_by_name`, `call_tool`, `function_schemas`: the executable tool registry
  (15 APIs of 10 RapidAPI-style tools) for agent loops.
- `generate_tasks`, `answer_is_correct`: tasks with their expected facts, for live evaluation.
- `solve`, `generate`: the scripted solver and the stream of solved, rendered tasks.
"""

from umi_data.synth.answer_file import FINISH_FUNCTION, Synthesized, answer_file_bytes, answer_record, generate, task_row
from umi_data.synth.solver import Episode, Step, solve
from umi_data.synth.tasks import KINDS, Task, answer_is_correct, generate_tasks, make_task, normalise_answer
from umi_data.synth.toolkit import SynthTool, ToolResult, observation_content
from umi_data.synth.tools import TOOL_DESCRIPTIONS, TOOL_GROUPS, WORLD, call_tool, function_schemas, tool_by_name

__all__ = [
    "FINISH_FUNCTION", "KINDS", "TOOL_DESCRIPTIONS", "TOOL_GROUPS", "WORLD", "Episode", "Step", "SynthTool", "Synthesized",
    "Task", "ToolResult", "answer_file_bytes", "answer_is_correct", "answer_record", "call_tool", "function_schemas",
    "generate", "generate_tasks", "make_task", "normalise_answer", "observation_content", "solve", "task_row", "tool_by_name",
]
