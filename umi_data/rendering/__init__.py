"""Rendering: trajectories into role examples, the text a model trains on.

`render` (the default renderer: every role's example from one trajectory), `compat` and
`compat_train` (the official α-UMi preprocessing, quirks included, for `build --compat`),
`prompts` (the α-UMi prompt texts), `examples` (role example records and their paths in a
corpus) and `variants` (which role corpora each GLPFT variant trains on, and in which stage).
"""
