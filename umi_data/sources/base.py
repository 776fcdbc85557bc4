"""What every source shares: finding input files, loading JSON without ever raising on bad
data, checking records against the hand-written schema of their raw format, and the loop that
turns each record into a `Trajectory` or a `Reject`.

A source module only says how to split a parsed file into records and how to convert one
valid record (`Source`); everything that can go wrong with the bytes is handled here once.

Most records are one task attempt. Some formats nest several attempts in one record (a ToolAlpaca
API entry holds one run per instruction in `Instances`): their `convert` returns an iterable with
one item per attempt, each located by its own context (`RecordContext.item`, locator
`$[3].Instances[2]`) and converted through `convert_guarded`, so one bad attempt rejects only
itself and accepted + rejected still counts attempts, not records.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import orjson
from pydantic import ValidationError

from umi_data.core import Reject, RejectReason, Trajectory, TurnOrderError, UnstorableValueError, find_unstorable

if TYPE_CHECKING:
    import jsonschema

MAX_ERRORS_IN_DETAIL = 5
JSON_LINES_SUFFIX = ".jsonl"
UTF8_BOM = b"\xef\xbb\xbf"
#: orjson parses up to 1024 levels but serialises only 255: deeper records cannot be stored.
MAX_STORABLE_DEPTH = 255


class InputPathError(ValueError):
    """An input path given by the user does not exist or holds no input file (a usage error,
    reported by the CLI as a message, not counted as a reject)."""


@dataclass(frozen=True)
class InputFile:
    """A file to read; `name` is its path relative to the input root it was found under
    (a POSIX string), used in ids, rejects and manifests so they do not depend on where the
    data lives on this machine."""

    path: Path
    name: str


@dataclass(frozen=True)
class RecordContext:
    file: InputFile
    locator: str  # JSON path of the record inside its file: "$" or "$[3]"
    content_hash: str  # sha256 of the record's bytes (whole file) or canonical JSON (list item)
    options: dict[str, Any] = field(default_factory=dict)

    def reject(self, reason: RejectReason, detail: str) -> Reject:
        return Reject(source_file=self.file.name, locator=self.locator, reason=reason, detail=detail)

    def item(self, suffix: str, content_hash: str) -> "RecordContext":
        """The context of one item nested in this record (`suffix` like ".Instances[2]"), with
        the hash of what identifies that item, so its trajectory id does not move when a
        sibling item changes."""
        return RecordContext(self.file, self.locator + suffix, content_hash, self.options)


Converted = Trajectory | Reject
#: What a `Source.salvage` recovers from a file that did not load: its complete records (parsed by
#: Python's json: each is checked for unstorable values like any such record) and the reject of
#: the cut-off rest, if any.
Salvaged = tuple[list[Any], Reject | None]


@dataclass(frozen=True)
class Source:
    """A source format. `records_per_file` is "one" (the file is the record), "list" (the file
    is a JSON array of records) or "records" (a JSON array of records, one record as a JSON
    object, or, in a `.jsonl` file, one record per line: the shapes datasets are shared in); `schema` names the raw-format schema in `umi_data/schemas/sources`,
    whose `$defs/record` describes one record; `convert` turns a schema-valid record into a
    trajectory or a reject, or, for records that nest several task attempts, an iterable of
    them (one per attempt, see the module docstring)."""

    name: str
    schema: str
    records_per_file: str
    convert: Callable[[Any, RecordContext], Converted | Iterable[Converted]]
    suffixes: tuple[str, ...] = (".json",)
    #: A check that comes before the schema check (a record the source itself marks invalid is
    #: `invalid_data`, whatever else is wrong with it): a reject, or None to go on.
    precheck: Callable[[Any, RecordContext], Reject | None] | None = None
    #: For a "list" file that did not load: the records still readable from it and the reject of
    #: its unreadable rest (None when there is none), or None to reject the whole file. Only a
    #: format whose writer appends record by record has one (umi's own episode log, which a
    #: killed run leaves unclosed); every other source rejects such a file whole.
    salvage: Callable[[InputFile, Loaded], Salvaged | None] | None = None

    @property
    def description(self) -> str:
        from umi_data.sources import description_of

        return description_of(self.name)


def discover_files(paths: Sequence[str | Path], suffixes: tuple[str, ...] = (".json",)) -> list[InputFile]:
    """Every input file under `paths`, in a deterministic order: files given directly keep the
    command-line order; directories are searched recursively and sorted by relative path."""
    return list(iter_files(paths, suffixes))


def iter_files(paths: Sequence[str | Path], suffixes: tuple[str, ...] = (".json",)) -> Iterator[InputFile]:
    """`discover_files` one file at a time: a directory is walked level by level in sorted
    order, so millions of inputs are never held in one list."""
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            found = False
            for file in _walk(root, "", suffixes):
                found = True
                yield file
            if not found:
                raise InputPathError(f"{raw}: directory holds no {'/'.join(suffixes)} file")
        elif root.exists():
            yield InputFile(root, text_name(root.name))
        else:
            raise InputPathError(f"{raw}: no such file or directory")


def check_input_paths(paths: Sequence[str | Path], suffixes: tuple[str, ...] = (".json",)) -> None:
    """Raise `InputPathError` now for a path `iter_files` would fail on later (it stops at each
    directory's first input file, so it costs little)."""
    for raw in paths:
        next(iter_files([raw], suffixes))


def _walk(directory: Path, prefix: str, suffixes: tuple[str, ...]) -> Iterator[InputFile]:
    # Sorting each level by name, with "/" after a directory's name, gives exactly the order of
    # sorting every relative path at once. Like Path.rglob, symlinked directories are not entered.
    entries = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.is_dir(follow_symlinks=False):
                    entries.append((entry.name + "/", entry.path))
                elif entry.is_file() and entry.name.endswith(suffixes) and not entry.name.startswith("."):
                    entries.append((entry.name, entry.path))
    except PermissionError:
        return
    for key, path in sorted(entries):
        if key.endswith("/"):
            yield from _walk(Path(path), prefix + key, suffixes)
        else:
            yield InputFile(Path(path), text_name(prefix + key))


def text_name(name: str | Path) -> str:
    """A file name as storable text. Python reads a name that is not UTF-8 with its bytes as
    lone surrogates (surrogateescape), which no UTF-8 writer accepts; those bytes are written
    `\\xNN` instead, so the file is still read and its rejects, ids and manifest entry name it."""
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")


@dataclass
class Loaded:
    """A file's bytes and, if they parse, its JSON value; else the reject that says why.
    `checked` is False when the value came from Python's json, which lets lone surrogates
    through: each record must then be checked (`unstorable_reject`) before it is used."""

    data: bytes = b""
    value: Any = None
    reject: Reject | None = None
    checked: bool = True

    @cached_property
    def sha256(self) -> str:
        """The hex sha256 of the bytes, computed once (record ids and the build's inputs.jsonl both use it)."""
        return hashlib.sha256(self.data).hexdigest()


def load_json(file: InputFile) -> Loaded:
    """Read and parse a JSON file, classifying every failure as a reject reason."""

    def fail(reason: RejectReason, detail: str) -> Loaded:
        return Loaded(data=data, reject=Reject(source_file=file.name, locator="$", reason=reason, detail=detail))

    data = b""
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        return fail(RejectReason.UNREADABLE_FILE, f"cannot read the file: {exc.strerror or exc}")
    return parse_json_bytes(data, fail)


def parse_json_bytes(data: bytes, fail: Callable[[RejectReason, str], Loaded]) -> Loaded:
    """`data` (a whole file, or one JSON Lines line) parsed, or `fail(reason, detail)`."""
    body = data.removeprefix(UTF8_BOM)
    try:  # orjson checks the UTF-8 itself (strictly): no text copy on the common path
        return Loaded(data=data, value=orjson.loads(body))
    except orjson.JSONDecodeError:
        pass
    if not body.strip():
        return fail(RejectReason.EMPTY_FILE, f"the file is empty ({len(data)} bytes)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + len(data) - len(body)
        return fail(RejectReason.NOT_UTF8, f"not UTF-8: byte 0x{data[offset]:02x} at offset {offset}")
    return _classify_json_error(text, data, fail)


# What a JSON document cut inside its last token ends with: a literal, number or escape begun.
_CUT_TOKEN = re.compile(r"(t|tr|tru|f|fa|fal|fals|n|nu|nul|-|-?\d+\.|-?\d+(\.\d+)?[eE][+-]?)")


def is_truncation(text: str, error: json.JSONDecodeError) -> bool:
    """True when the document is a prefix of valid JSON: it stops between tokens, inside a
    string, or inside its last literal, number or escape sequence."""
    body = text.rstrip()
    tail = body[error.pos:]
    if not tail or error.msg.startswith("Unterminated string"):
        return True
    if error.msg.startswith("Invalid \\") and '"' not in tail[1:]:
        return True  # a string cut inside an escape such as \u00
    last_token = re.search(r"[-+.\w]*$", body).group()
    return error.pos >= len(body) - len(last_token) and _CUT_TOKEN.fullmatch(last_token) is not None


def error_position(error: json.JSONDecodeError) -> str:
    """Where the stdlib parser stopped, as the reject details say it."""
    return f"line {error.lineno} column {error.colno} (char {error.pos})"


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _classify_json_error(text: str, data: bytes, fail: Callable[[RejectReason, str], Loaded]) -> Loaded:
    # orjson is fast but its messages are terse; the stdlib parser says where and why.
    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        where = error_position(exc)
        if is_truncation(text, exc):
            return fail(RejectReason.TRUNCATED_JSON, f"the JSON stops before its end: {exc.msg} at {where}")
        return fail(RejectReason.INVALID_JSON, f"not valid JSON: {exc.msg} at {where}")
    except RecursionError:
        return fail(RejectReason.INVALID_JSON, "not valid JSON: nested too deeply")
    except ValueError as exc:  # NaN, Infinity, -Infinity
        return fail(RejectReason.INVALID_JSON, f"not valid JSON: {exc}")
    # What orjson refuses and the stdlib reads: lone surrogate escapes, numbers beyond a double.
    # Those are judged record by record, so one bad record of a list file rejects only itself.
    return Loaded(data=data, value=value, checked=False)


def unstorable_reject(value: Any, ctx: "RecordContext") -> Reject | None:
    """The reject of a value holding something no umi file can store (a lone surrogate:
    `invalid_text`; NaN, an infinity or an integer beyond 64 bits: `invalid_json`), naming
    its JSON path; None when the value is fine."""
    problem = find_unstorable(value, ctx.locator)
    if problem is None:
        return None
    reason = RejectReason.INVALID_TEXT if problem.text else RejectReason.INVALID_JSON
    return ctx.reject(reason, str(problem))


# --- raw-format schemas -------------------------------------------------------------------

SCHEMA_PACKAGE = "umi_data.schemas.sources"


#: Schemas of sources registered from Python (umi_data.sources.register_source), by name.
_REGISTERED_SCHEMAS: dict[str, dict[str, Any]] = {}


def register_schema(name: str, schema: dict[str, Any]) -> None:
    """Make `schema` the raw-format schema called `name` (a registered source's); a name umi
    ships is refused, so a built-in format's checks cannot be replaced from outside."""
    if resources.files(SCHEMA_PACKAGE).joinpath(name).is_file():
        raise ValueError(f"schema name {name!r} is umi's own; choose another")
    _REGISTERED_SCHEMAS[name] = schema
    for cached in (raw_schema, _validator, _fast_check):
        cached.cache_clear()  # a re-registered name must not keep the old schema's checks


@cache
def raw_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of a raw source format: a hand-written file in umi_data/schemas/sources,
    or one registered with a source of the user's own."""
    if name in _REGISTERED_SCHEMAS:
        return _REGISTERED_SCHEMAS[name]
    return json.loads(resources.files(SCHEMA_PACKAGE).joinpath(name).read_text("utf-8"))


@cache
def _validator(name: str, part: str) -> jsonschema.protocols.Validator:
    """The full validator (jsonschema, imported here: only a record the fast check refuses needs it)."""
    import jsonschema

    schema = raw_schema(name)
    if part != "file":
        schema = {"$ref": f"#/$defs/{part}", "$defs": schema["$defs"]}
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@cache
def _fast_check(name: str, part: str) -> Callable[[Any], bool]:
    """A compiled accept-check of the same schema and draft (jsonschema-rs: 8 us for a synthetic
    ToolBench record where fastjsonschema took 83 us). Valid records, the
    common case, pay only this; an invalid one is walked again by jsonschema for every error and
    its path, so what is rejected, and why, is jsonschema's word alone."""
    import jsonschema_rs

    schema = raw_schema(name)
    if part != "file":
        schema = {"$ref": f"#/$defs/{part}", "$defs": schema["$defs"]}
    is_valid = jsonschema_rs.Draft202012Validator(schema).is_valid

    def accepts(value: Any) -> bool:
        try:
            return is_valid(value)
        except (ValueError, TypeError, OverflowError, RecursionError):  # a value Rust cannot hold: ask jsonschema
            return False

    return accepts


@dataclass(frozen=True)
class SchemaError:
    path: str  # JSON path, "$.answer_generation.function[2].name"
    message: str
    shape: bool  # True for a missing key or a wrong top-level type, False for a wrong value inside


def schema_errors(value: Any, schema_name: str, part: str = "file", prefix: str = "$") -> list[SchemaError]:
    """All violations of a raw-format schema, sorted by path. `part` is "file" (the whole
    document), or the name of one of its `$defs` ("record": one record; a source may check
    smaller parts such as one nested item) with paths under `prefix`."""
    if _fast_check(schema_name, part)(value):
        return []
    errors = []  # the full validator says what and where
    for error in _validator(schema_name, part).iter_errors(value):
        path = prefix + error.json_path[1:]
        shape = error.validator in ("required", "minItems") or not error.path
        errors.append(SchemaError(path, _short_message(error), shape))
    return sorted(errors, key=lambda e: e.path)


def _short_message(error: jsonschema.ValidationError) -> str:
    # jsonschema's own messages repr the whole offending value, which can be megabytes.
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        return f"expected {expected}, got {_json_type(error.instance)}"
    if error.validator == "enum":
        return f"{_preview(error.instance)} is not one of {error.validator_value}"
    if error.validator == "const":
        return f"expected {error.validator_value!r}, got {_preview(error.instance)}"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _preview(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def errors_to_reject(errors: list[SchemaError], ctx: RecordContext) -> Reject:
    reason = RejectReason.WRONG_SHAPE if any(e.shape for e in errors) else RejectReason.WRONG_TYPE
    shown = "; ".join(f"{e.path}: {e.message}" for e in errors[:MAX_ERRORS_IN_DETAIL])
    more = len(errors) - MAX_ERRORS_IN_DETAIL
    return ctx.reject(reason, shown + (f" (and {more} more)" if more > 0 else ""))


# --- the reading loop ---------------------------------------------------------------------


def read_source(
    source: Source,
    files: Iterable[InputFile],
    options: dict[str, Any] | None = None,
    on_file: Callable[[InputFile, Loaded], None] | None = None,
) -> Iterator[Converted]:
    """Every record of every file as a `Trajectory` or a `Reject`, streaming file by file.
    A file that cannot be read or parsed counts as one rejected record. `on_file` sees each
    file once, loaded (the builder records its size and hash without reading twice)."""
    options = options or {}
    for file in files:
        if is_json_lines(source, file):
            yield from _read_json_lines(source, file, options, on_file)
            continue
        loaded = load_json(file)
        if on_file is not None:
            on_file(file, loaded)
        if loaded.reject is None:
            yield from _read_records(source, file, loaded, options)
            continue
        salvaged = source.salvage(file, loaded) if source.salvage is not None and loaded.data else None
        if salvaged is None:
            yield loaded.reject
            continue
        records, rest = salvaged
        yield from _read_records(source, file, Loaded(data=loaded.data, value=records, checked=False), options)
        if rest is not None:
            yield rest


def is_json_lines(source: Source, file: InputFile) -> bool:
    """A `.jsonl` file of a source whose records may come one per line."""
    return source.records_per_file == "records" and file.name.endswith(JSON_LINES_SUFFIX)


def _read_json_lines(
    source: Source, file: InputFile, options: dict[str, Any], on_file: Callable[[InputFile, Loaded], None] | None,
) -> Iterator[Converted]:
    """Every line of a JSON Lines file as one record at `$[i]` (i: the 0-based line index, so
    a reject's locator says which line; blank lines are skipped). A line that is not JSON
    rejects only itself."""
    loaded = load_bytes(file)
    if on_file is not None:
        on_file(file, loaded)
    if loaded.reject is not None:
        yield loaded.reject
        return
    found = False
    for index, line, parsed in json_lines(file, loaded.data):
        found = True
        if parsed.reject is not None:
            yield parsed.reject
        else:
            yield from _read_item(source, file, f"$[{index}]", parsed.value, parsed.checked, options)
    if not found:
        yield Reject(source_file=file.name, locator="$", reason=RejectReason.EMPTY_FILE,
                     detail=f"the JSON Lines file holds no record ({len(loaded.data)} bytes)")


def load_bytes(file: InputFile) -> Loaded:
    """A file's bytes, unparsed (JSON Lines are parsed line by line), or the reject of a file
    that cannot be read."""
    try:
        return Loaded(data=file.path.read_bytes())
    except OSError as exc:
        return Loaded(reject=Reject(source_file=file.name, locator="$", reason=RejectReason.UNREADABLE_FILE,
                                    detail=f"cannot read the file: {exc.strerror or exc}"))


def json_lines(file: InputFile, data: bytes) -> Iterator[tuple[int, bytes, Loaded]]:
    """(0-based line index, line, its parse) for every non-blank line of a JSON Lines file."""
    for index, line in enumerate(data.removeprefix(UTF8_BOM).split(b"\n")):
        if not line.strip():
            continue

        def fail(reason: RejectReason, detail: str, index: int = index, line: bytes = line) -> Loaded:
            return Loaded(data=line, reject=Reject(source_file=file.name, locator=f"$[{index}]", reason=reason,
                                                   detail=f"line {index + 1}: {detail}"))

        yield index, line, parse_json_bytes(line, fail)


def _read_records(source: Source, file: InputFile, loaded: Loaded, options: dict[str, Any]) -> Iterator[Converted]:
    value = loaded.value
    if source.records_per_file == "records" and isinstance(value, dict):  # a file holding one record
        yield from _read_item(source, file, "$", value, loaded.checked, options)
        return
    if source.records_per_file == "one":
        ctx = RecordContext(file, "$", loaded.sha256, options)
        unstorable = None if loaded.checked else unstorable_reject(value, ctx)
        yield from [unstorable] if unstorable else convert_record(source, value, ctx)
        return
    if not isinstance(value, list):
        yield Reject(
            source_file=file.name, locator="$", reason=RejectReason.WRONG_SHAPE,
            detail=f"$: expected an array of {source.name} records, got {_json_type(value)}",
        )
        return
    for index, record in enumerate(value):
        yield from _read_item(source, file, f"$[{index}]", record, loaded.checked, options)


def _read_item(source: Source, file: InputFile, locator: str, record: Any, checked: bool, options: dict[str, Any]) -> Iterator[Converted]:
    """One record of a list (or JSON Lines) file, hashed by its canonical JSON."""
    ctx = RecordContext(file, locator, "", options)
    unstorable = None if checked else unstorable_reject(record, ctx)
    if unstorable is not None:
        yield unstorable
        return
    try:
        digest = hashlib.sha256(orjson.dumps(record)).hexdigest()
    except TypeError:  # orjson: "Recursion limit reached"
        yield too_deep(ctx)
        return
    yield from convert_record(source, record, RecordContext(file, locator, digest, options))


def too_deep(ctx: RecordContext) -> Reject:
    return ctx.reject(RejectReason.WRONG_SHAPE, f"{ctx.locator}: nested more than {MAX_STORABLE_DEPTH} levels deep")


def convert_record(source: Source, record: Any, ctx: RecordContext) -> Iterator[Converted]:
    """Schema-check one record, then convert it into its trajectories and rejects (one for most
    sources, one per nested attempt for the others)."""
    early = source.precheck(record, ctx) if source.precheck is not None else None
    if early is not None:
        yield early
        return
    errors = schema_errors(record, source.schema, "record", ctx.locator)
    if errors:
        yield errors_to_reject(errors, ctx)
        return
    converted = convert_guarded(source.convert, record, ctx)
    if isinstance(converted, (Trajectory, Reject)):
        yield converted
    else:
        yield from converted


def convert_guarded(convert: Callable[[Any, RecordContext], Any], value: Any, ctx: RecordContext) -> Any:
    """`convert(value, ctx)`, with a converted trajectory that fails validation turned into a
    reject at `ctx.locator`: `bad_turn_order` naming the turn, `invalid_text` for a lone
    surrogate, else `wrong_type`."""
    try:
        return convert(value, ctx)
    except ValidationError as exc:
        return _validation_reject(exc, ctx)
    except UnstorableValueError as exc:  # text a source decoded (call arguments) holds a lone surrogate
        return ctx.reject(RejectReason.INVALID_TEXT if exc.text else RejectReason.INVALID_JSON, f"{ctx.locator}: {exc}")


def _validation_reject(exc: ValidationError, ctx: RecordContext) -> Reject:
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, TurnOrderError):
        return ctx.reject(RejectReason.BAD_TURN_ORDER, f"converted {cause}")
    if isinstance(cause, UnstorableValueError):
        # A value decoded from text inside the record (an observation envelope, Finish or
        # call arguments): the path is in the converted trajectory.
        reason = RejectReason.INVALID_TEXT if cause.text else RejectReason.INVALID_JSON
        return ctx.reject(reason, f"converted record, {cause} (decoded from text in {ctx.locator})")
    where = ".".join(str(part) for part in first["loc"])
    return ctx.reject(RejectReason.WRONG_TYPE, f"converted record is invalid at {where}: {first['msg']}")
