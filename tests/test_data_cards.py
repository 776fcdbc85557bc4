"""data_cards/ must match what `python -m umi_data.data_cards` (make data-cards) writes now."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from umi_data.corpus.card import CARD, PLOTS, STATS
from umi_data.data_cards import CARDS, SYNTHETIC_DEMO, regenerate


def test_committed_data_cards_are_current(tmp_path: Path) -> None:
    regenerate(tmp_path)
    committed, fresh = CARDS / SYNTHETIC_DEMO["name"], tmp_path / SYNTHETIC_DEMO["name"]
    hint = "data_cards/ is stale: run `make data-cards` (python -m umi_data.data_cards) and commit the result"
    for name in (CARD, STATS):
        assert (committed / name).read_bytes() == (fresh / name).read_bytes(), f"{name}: {hint}"
    # PNG bytes may differ with the freetype/matplotlib build; the numbers behind them are in
    # stats.json (compared above), so the plots only have to exist and open at the same size.
    for relative in PLOTS.values():
        with Image.open(committed / relative) as old, Image.open(fresh / relative) as new:
            assert old.format == new.format == "PNG" and old.size == new.size, f"{relative}: {hint}"
