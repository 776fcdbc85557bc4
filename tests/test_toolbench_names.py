"""ToolBench's name standardisation (umi_data.sources.toolbench_names), against its specification
(../shared/TOOLCALLING.md §10) and against the names in real ToolBench answer files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from umi_data.sources.toolbench_names import (
    api_function_stem, change_name, function_name, parameter_name, standardize, standardize_category,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Songkick concert", "songkick_concert"),
    ("TheClique", "theclique"),
    ("__Hello--World__", "hello_world"),
    ("3D Print", "get_3d_print"),
    ("a^b", "a^b"),  # the caret survives: ToolBench's character class lists it
    ("Café Menu", "caf_menu"),  # accented letters are not kept
    ("中文 API", "中文_api"),
    ("v1.2/users%20list", "v1_2_users_20list"),
    ("", ""),
    ("___", ""),
    ("-7 days", "get_7_days"),
    ("ALL CAPS", "all_caps"),
])
def test_standardize(raw: str, expected: str) -> None:
    assert standardize(raw) == expected
    assert standardize(expected) == expected  # a standard name is its own standard form


def test_change_name_prefixes_reserved_words_only() -> None:
    assert [change_name(n) for n in ("id", "from", "class", "return", "false", "true", "and")] == [
        "is_id", "is_from", "is_class", "is_return", "is_false", "is_true", "is_and"]
    assert change_name("ids") == "ids" and change_name("ID") == "ID"
    assert parameter_name("ID") == "is_id" and api_function_stem("From") == "is_from"


@pytest.mark.parametrize(("raw", "expected"), [
    ("News, Media", "News_Media"), ("Artificial Intelligence/Machine Learning", "Artificial_Intelligence_Machine_Learning"),
    ("a___b", "a__b"), ("Data", "Data"), ("Video, Images", "Video_Images"),
])
def test_standardize_category(raw: str, expected: str) -> None:
    assert standardize_category(raw) == expected


def test_function_name_keeps_the_last_64_characters() -> None:
    assert function_name("Songkick concert", "theclique") == "songkick_concert_for_theclique"
    assert function_name("id", "tool") == "is_id_for_tool"
    long = function_name("Get the very long list of all securities for this threshold", "investors_exchange_iex_trading")
    assert len(long) == 64 and long.endswith("_for_investors_exchange_iex_trading")
    assert ("get_the_very_long_list_of_all_securities_for_this_threshold_for_investors_exchange_iex_trading").endswith(long)


def _answer_functions(answer_dir: Path) -> list[dict]:
    return [f for path in sorted(answer_dir.glob("*/*.json"))
            for f in json.loads(path.read_text())["answer_generation"]["function"] if f["name"] != "Finish"]


def test_real_answer_files_follow_the_naming_rules(toolbench_answer: Path) -> None:
    """Every function of the 15 ToolBench answer files: `<stem>_for_<tool>` with the tool named
    in its description (or the last 64 characters of it), a stem and parameter names that are
    fixed points of umi's standardisation, and ToolBench's three parameter types."""
    functions = _answer_functions(toolbench_answer)
    assert len(functions) > 40
    for function in functions:
        tool = re.match(r'This is the subfunction for tool "([^"]*)"', function["description"]).group(1)
        assert standardize(tool) == tool
        name = function["name"]
        if len(name) == 64 and not name.endswith(f"_for_{tool}"):
            continue  # cut at the front: nothing of the stem can be checked
        stem = name[: -len(f"_for_{tool}")]
        assert name.endswith(f"_for_{tool}") and api_function_stem(stem) == stem, name
        for parameter, schema in function["parameters"]["properties"].items():
            assert parameter_name(parameter) == parameter
            assert schema["type"] in ("string", "integer", "boolean")
