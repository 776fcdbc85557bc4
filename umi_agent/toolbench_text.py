"""Prompt and protocol texts of ToolBench's inference, kept verbatim because fidelity needs them.

Attribution: these strings are taken word for word from OpenBMB/ToolBench and its fork
THUNLP-MT/StableToolBench (`toolbench/inference/Prompts/ReAct_prompts.py`,
`Prompts/Tree_search_prompts.py`, `Downstream_tasks/rapidapi.py`), both licensed under the
Apache License 2.0 (https://www.apache.org/licenses/LICENSE-2.0). They are data, not code: the
answer files umi writes must carry the same system prompt, task description, `Finish` function
and DFSDT diversity prompt as ToolBench's own, typos included ("excute", "finial", "trails"),
so that ToolBench's converters and the models trained on its data see what they expect.
"""

from __future__ import annotations

#: `FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION`: the AutoGPT system message; `{task_description}` is filled.
SYSTEM_PROMPT = """You are AutoGPT, you can use many tools(functions) to do the following task.
First I will give you the task description, and your task start.
At each step, you need to give your thought to analyze the status now and what to do next, with a function call to actually excute your step.
After the call, you will get the call result, and you are now in a new state.
Then you will analyze your status now, then decide what to do next...
After many (Thought-call) pairs, you finally perform the task, then you can give your finial answer.
Remember: 
1.the state change is irreversible, you can't go back to one of the former state, if you want to restart the task, say "I give up and restart".
2.All the thought is short, at most in 5 sentence.
3.You can do more then one trys, so if your plan is to continusly try some conditions, you can do one of the conditions per try.
Let's Begin!
Task description: {task_description}"""

#: The start of the task description; `k.<standard tool name>: <tool description>` lines follow.
TASK_DESCRIPTION = """You should use functions to help handle the real time user querys. Remember:
1.ALWAYS call \"Finish\" function at the end of the task. And the final answer should contain enough information to show to the user,If you can't handle the task, or you find that function calls always fail(the function is not valid now), use function Finish->give_up_and_restart.
2.Do not use origin tool names, use only subfunctions' names.
You have access of the following tools:\n"""

#: `FORMAT_INSTRUCTIONS_USER_FUNCTION`: the first user message.
USER_PROMPT = "\n{input_description}\nBegin!\n"

#: The description of the `Finish` function (StableToolBench's wording, as in its data_example).
FINISH_DESCRIPTION = (
    "If you believe that you have obtained a result that can answer the task, please call this function to provide "
    "the final answer. Alternatively, if you recognize that you are unable to proceed with the task in the current "
    "state, call this function to restart. Remember: you must ALWAYS call this function at the end of your attempt, "
    "and the only part that will be shown to the user is the final answer, so it should contain sufficient information."
)
FINAL_ANSWER_DESCRIPTION = 'The final answer you want to give the user. You should have this field if "return_type"=="give_answer"'

#: `DIVERSITY_PROMPT`: the user message of DFSDT before a node's second (third, ...) child.
DIVERSITY_PROMPT = """This is not the first time you try this task, all previous trails failed.
Before you generate my thought for this state, I will first show you your previous actions for this state, and then you must generate actions that is different from all of them. Here are some previous actions candidates:
{previous_candidate}
Remember you are now in the intermediate state of a trail, you will first analyze the now state and previous action candidates, then make actions that is different from all the previous."""

#: What ToolBench's environment answers to `Finish` calls, with its status codes.
FINISH_ANSWERED = '{"response":"successfully giving the final answer."}'  # code 3
FINISH_GAVE_UP = '{"response":"chose to give up and restart"}'  # code 4
FINISH_NO_RETURN_TYPE = '{error:"must have "return_type""}'  # code 2
FINISH_NO_FINAL_ANSWER = '{error:"must have "final_answer""}'  # code 2
FINISH_BAD_RETURN_TYPE = '{error:""return_type" is not a valid choice"}'  # code 2

__all__ = [
    "DIVERSITY_PROMPT", "FINAL_ANSWER_DESCRIPTION", "FINISH_ANSWERED", "FINISH_BAD_RETURN_TYPE", "FINISH_DESCRIPTION",
    "FINISH_GAVE_UP", "FINISH_NO_FINAL_ANSWER", "FINISH_NO_RETURN_TYPE", "SYSTEM_PROMPT", "TASK_DESCRIPTION", "USER_PROMPT",
]
