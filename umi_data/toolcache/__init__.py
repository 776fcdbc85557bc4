"""umi's tool response cache: StableToolBench's addressing, indexed once into SQLite.

`build.build_tool_cache` writes a cache directory from corpora, ToolBench answer files and
StableToolBench cache files; `store.CacheStore` reads one; `names` and `keys` say how a
`/virtual` request is addressed. The server that answers from it is `umi_agent.toolserver`.
"""
