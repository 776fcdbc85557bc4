"""The tool response cache (`python -m umi_data tool-cache`) and the /virtual contract in-process.

A small StableToolBench-layout cache is written here by hand (keys as `str(dict)` reprs, a key
repeated with another value, a path-like category), indexed, and asked through `VirtualAPI`
exactly as StableToolBench's client asks its server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from umi_agent.virtual import MISS_PREFIX, PARSE_ERROR, VirtualAPI
from umi_data.toolcache.build import build_tool_cache
from umi_data.toolcache.keys import keys_of_input, keys_of_repr
from umi_data.sources.toolbench_names import request_address, standardize, standardize_category

REPO = Path(__file__).resolve().parents[1]


def test_names_follow_toolbench() -> None:
    assert standardize("Songkick concert") == "songkick_concert"
    assert standardize("  --Hello  World!!--") == "hello_world"
    assert standardize("123 Numbers") == "get_123_numbers"
    assert standardize("a^b") == "a^b"  # the quirk of the original character class
    assert standardize("Café/Ünïcode") == "caf_n_code"
    assert standardize_category("News, Media") == "News_Media"
    assert standardize_category("a___b") == "a__b"
    assert request_address("News, Media", "TheClique", "Songkick concert") == ("News_Media", "theclique_for_News_Media", "songkick_concert")
    # a full function name is cut at `_for_<tool_name>`; a tool name with the category suffix is the directory itself
    assert request_address("Data", "theclique", "songkick_concert_for_theclique").api == "songkick_concert"
    assert request_address("Data", "My Tool_for_Data", "id").tool_dir == "My Tool_for_Data"
    assert request_address("Data", "x", "id").api == "is_id"


def test_keys_exact_and_canonical() -> None:
    exact, canon = keys_of_input('{"b": 1, "a": [true, null, "é"]}')
    assert exact == "{'b': 1, 'a': [True, None, 'é']}"
    assert canon == '{"a":[true,null,"é"],"b":1}'
    assert keys_of_repr(exact) == (exact, canon)
    assert keys_of_input("") == ("{}", "{}") and keys_of_input({"x": 1})[0] == "{'x': 1}"
    assert keys_of_input("{not json") is None
    assert keys_of_repr("__import__('os')")[1] is None  # never evaluated: not a literal
    assert keys_of_repr("[" * 200_000)[1] is None  # bounded


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture()
def stb_cache(tmp_path: Path) -> Path:
    """A hand-made `tool_response_cache/` as StableToolBench writes it (json.dump, indent 4)."""
    root = tmp_path / "tool_response_cache"
    weather = {
        "{'city': 'Paris', 'units': 'metric'}": {"error": "", "response": {"temp": 21, "sky": "clear"}},
        "{}": {"error": "", "response": "default city: Berlin"},
    }
    _write(root / "Weather" / "open_weather_for_Weather" / "current.json", json.dumps(weather, indent=4))
    # the same key twice with different values: json.load (and so the server) keeps the last one
    _write(root / "News_Media" / "daily_news_for_News_Media" / "headlines.json",
           '{"{\'q\': \'rust\'}": {"error": "", "response": "old"}, "{\'q\': \'rust\'}": {"error": "", "response": "new"}}')
    _write(root / "News_Media" / "daily_news_for_News_Media" / "not_a_cache.json", "[1, 2]")
    _write(root / "News_Media" / "daily_news_for_News_Media" / "broken.json", "{")
    return root


def _req(category: str, tool: str, api: str, tool_input: object) -> dict:
    return {"category": category, "tool_name": tool, "api_name": api, "tool_input": tool_input, "strip": "", "toolbench_key": "k"}


def test_stablebench_layout_is_indexed_and_answered(stb_cache: Path, tmp_path: Path) -> None:
    card = build_tool_cache([stb_cache], tmp_path / "cache")
    assert (card["keys"], card["stored_responses"], card["conflicts"], card["apis"]) == (3, 4, 1, 2)
    assert card["files_rejected"] == {"invalid JSON": 1, "neither a ToolBench answer file nor a StableToolBench cache file": 1}
    readme = (tmp_path / "cache" / "README.md").read_text()
    assert readme.count("| Weather | 2 |") == 1
    # the card says where the published cache and the queries come from, and how to play and score a group
    assert "huggingface.co/datasets/stabletoolbench/Cache" in readme and "THUNLP-MT/StableToolBench" in readme
    assert "python -m umi_agent.run --run RUN --toolbench-queries" in readme and "python -m umi_agent.passrate" in readme
    api = VirtualAPI(tmp_path / "cache")
    # exact key as sent, a JSON string of input
    assert api.answer(_req("Weather", "Open Weather", "current", '{"city": "Paris", "units": "metric"}')) == weather_paris()
    # another key order is the same input (canonical match), a dict input works too
    assert api.answer(_req("Weather", "open_weather", "current", {"units": "metric", "city": "Paris"})) == weather_paris()
    assert api.answer(_req("Weather", "open_weather_for_Weather", "current", ""))["response"] == "default city: Berlin"
    assert api.answer(_req("Weather", "open_weather", "current_for_open_weather", "{}"))["response"] == "default city: Berlin"
    assert api.answer(_req("News, Media", "Daily News", "headlines", '{"q": "rust"}'))["response"] == "new"
    miss = api.answer(_req("Weather", "open_weather", "current", '{"city": "Rome"}'))
    assert miss["response"] == "" and miss["error"].startswith(MISS_PREFIX)
    assert api.answer(_req("../../etc", "../passwd", "current", "{}"))["error"].startswith(MISS_PREFIX)
    assert api.answer(_req("Weather", "open_weather", "current", "{'city': 'Paris'}")) == PARSE_ERROR
    assert api.answer(_req("Any", "x", "Chat with user", "")) == {"error": "", "response": "Chat with user."}
    stats = api.stats()
    assert stats["counts"] == {"hit_exact": 4, "hit_canonical": 1, "miss": 2, "parse_error": 1, "chat_with_user": 1}
    assert stats["misses_per_api"] == {"Weather/open_weather_for_Weather/current": 1, ".._.._etc/passwd_for_.._.._etc/current": 1}


def weather_paris() -> dict:
    return {"error": "", "response": {"temp": 21, "sky": "clear"}}


def test_nearest_is_flagged(stb_cache: Path, tmp_path: Path) -> None:
    build_tool_cache([stb_cache], tmp_path / "cache")
    api = VirtualAPI(tmp_path / "cache", on_miss="nearest")
    near = api.answer(_req("Weather", "open_weather", "current", '{"city": "Paris", "units": "imperial"}'))
    assert near["response"] == {"temp": 21, "sky": "clear"}
    assert near["umi"] == {"match": "nearest", "input": "{'city': 'Paris', 'units': 'metric'}"}
    # an api with nothing recorded stays a miss
    assert api.answer(_req("Weather", "open_weather", "forecast", "{}"))["error"].startswith(MISS_PREFIX)
    assert api.stats()["counts"] == {"nearest": 1, "miss": 1}


def test_corpus_and_answer_files_give_the_recorded_bodies(toolbench_answer: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, "-m", "umi_data", "build", "toolbench", str(toolbench_answer), "--out", str(corpus), "--quiet"],
                   check=True, capture_output=True)
    from_corpus = build_tool_cache([corpus], tmp_path / "c1")
    from_files = build_tool_cache([toolbench_answer], tmp_path / "c2")
    assert from_corpus["conflicts"] == 0 and from_corpus["keys"] == 30
    # the raw files add the other chains and the DFS trees: more keys, and the conflicts they hold are kept
    assert from_files["keys"] > from_corpus["keys"] and from_files["conflicts"] == 5


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "umi_data", "tool-cache", str(tmp_path / "nope"), "--out", str(tmp_path / "c")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "no such file or directory" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "umi_agent.toolserver", "--cache", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "not a tool cache" in result.stderr and "Traceback" not in result.stderr
