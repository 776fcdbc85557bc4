"""The corpus as read back: a built corpus directory and what reads it.

`layout` (its file names and `load_corpus`), `rows` (trajectory rows to and from Parquet,
`read_trajectories`), `files` (its files listed and verified), `duck` (DuckDB views over it),
`query` and `query_out` (`umi-data query`, read-only), `stats` (lengths and counts) and `card`
(the data card).
"""
