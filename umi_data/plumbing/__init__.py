"""The shared plumbing every entry point uses: `cli` (the command-line style: parser, help,
one-line errors, program names), `outdir` (the output-directory policy: a directory is umi's by
its lock, replaced as a whole, never beside another writer) and `write` (atomic writes).
"""
