"""What each `build` setting means and defaults to: read by `BuildConfig` (umi_data/building/build.py)
and by the command line's help, which must not import pydantic or pyarrow to print it."""

from __future__ import annotations

DEFAULT_SPLIT_RATIO = 0.5
DEFAULT_SPLIT_SEED = 0

BUILD_FIELDS: dict[str, str] = {
    "source": "source format name (see `umi-data build --help`)",
    "inputs": "input files or directories, as given",
    "exclude_test_ids": "ToolBench test_query_ids files or directories ({group}_*.json objects keyed by query id)",
    "strict": "exit non-zero when any record is rejected",
    "compat": "reproduce the official alpha-UMi preprocessing exactly (quirks included) and write alpha_umi/",
    "split_seed": "seed of the A/B instruction split",
    "split_ratio": "share of instructions in split A",
}
