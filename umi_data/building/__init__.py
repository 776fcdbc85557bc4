"""Building: source files into a corpus directory (`umi-data build`, `umi-data merge`).

`build` (the command's entry: `build_corpus`), `config` (what a build was asked, its output
policy), `manifest` (the corpus manifest and card written last), `fields` (the settings' help,
free of heavy imports), `parts` and `workers` (input files converted in parallel parts),
`writer` (the streaming writer of every corpus file), `shards` and `shard_checks` (`--shard`
builds and their merge) and `memory` (returning freed memory between phases).
"""
