"""JSON and YAML documents read safely: exact numbers, no duplicate keys, bounded nesting, located errors.

Patient files and case files are read here. What the standard loaders do silently is refused:
a key given twice at any depth (YAML keeps the last, JSON's `object_pairs_hook` cannot say where),
numbers a float would round or a huge exponent would take minutes to expand, NaN and Infinity,
and nesting deep enough to exhaust Python's stack. A number outside the limits is not an error
here: it becomes a `BadNumber`, which the reader of that value reports with the fact it belongs to.
YAML dates stay text, so an impossible date is reported like any other bad date.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.source import SourceFile, Span
from eligib.limits import MAX_INPUT_NESTING, MAX_NUMBER_DIGITS
from eligib.values.numbers import BadNumber, decimal_or_bad, within_limits


def _json_int(text: str) -> int | BadNumber:
    checked = decimal_or_bad(text)
    return int(checked) if isinstance(checked, Decimal) else checked


def _json_constant(text: str) -> BadNumber:
    return BadNumber(text, "is not a finite number")


@dataclass
class Document:
    """A parsed file: its data, and where each top-level key was written."""

    data: Any
    key_spans: dict[str, Span]


def nesting(data: Any) -> int:
    """How deeply lists and mappings nest in parsed data (iteratively: the data may be deep)."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_INPUT_NESTING:
                return deepest
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def first_bad_number(data: Any) -> tuple[str, BadNumber] | None:
    """The first BadNumber inside parsed data, with its path (`entry.0.resource.value`), or None."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, BadNumber):
            return path, value
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend((f"{path}.{key}" if path else str(key), item) for key, item in reversed(list(items)))
    return None


class _Positions:
    """Line and column of a character offset, by binary search over line starts."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def line_column(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def _duplicate_code(what: str) -> str:
    return "duplicate-fact-value" if what == "patient-file" else f"bad-{what}"


def _noun(what: str) -> str:
    return "fact" if what == "patient-file" else "key"


def json_document(source: SourceFile, what: str, hint: str) -> Document:
    """Parse JSON whose top level is usually an object; keys are located, duplicates refused anywhere.

    `what` is "patient-file" or "case-file": it names the error codes (`bad-patient-file`)."""
    text = source.text
    _check_json_nesting(source, what)
    nested_duplicates: list[str] = []
    decoder = exact_decoder(nested_duplicates)
    positions = _Positions(text)
    try:
        return _scan_object(source, decoder, positions, nested_duplicates, what)
    except json.JSONDecodeError as exc:
        line, column = positions.line_column(exc.pos)
        raise DiagnosticError([error(f"bad-{what}", f"malformed JSON: {exc.msg.lower()}",
                                     source.span_at(line, column), "here", help=hint)]) from None


def exact_decoder(duplicates: list[str]) -> json.JSONDecoder:
    """A JSON decoder reading numbers exactly (decimals; BadNumber past the limits, NaN, Infinity) and
    noting in `duplicates` each key given twice in an object (the standard decoder keeps the last)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                duplicates.append(key)
            found[key] = value
        return found

    return json.JSONDecoder(parse_float=decimal_or_bad, parse_int=_json_int, parse_constant=_json_constant,
                            object_pairs_hook=pairs)


def _check_json_nesting(source: SourceFile, what: str) -> None:
    """Refuse nesting deeper than the limit before the recursive decoder sees it."""
    depth, in_string, escaped = 0, False, False
    for offset, char in enumerate(source.text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_INPUT_NESTING:
                line, column = _Positions(source.text).line_column(offset)
                raise DiagnosticError([error(f"bad-{what}", f"objects and lists nest more than "
                                             f"{MAX_INPUT_NESTING} deep", source.span_at(line, column),
                                             "too deep here", help="see docs/limits.md")])
        elif char in "]}":
            depth -= 1


def _skip_space(text: str, offset: int) -> int:
    while offset < len(text) and text[offset] in " \t\r\n":
        offset += 1
    return offset


def _scan_object(source: SourceFile, decoder: json.JSONDecoder, positions: _Positions,
                 nested_duplicates: list[str], what: str) -> Document:
    text = source.text
    offset = _skip_space(text, 0)
    if not text.startswith("{", offset):
        whole, end = decoder.raw_decode(text, offset)
        if _skip_space(text, end) != len(text):
            raise json.JSONDecodeError("Extra data", text, _skip_space(text, end))
        return Document(whole, {})
    data: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    offset = _skip_space(text, offset + 1)
    if text.startswith("}", offset):
        offset += 1
    else:
        while True:
            if not text.startswith('"', offset):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, offset)
            key, key_end = json.decoder.scanstring(text, offset + 1)  # type: ignore[attr-defined]
            line, column = positions.line_column(offset)
            span = source.span_at(line, column, key_end - offset)
            if key in data:
                raise DiagnosticError([error(_duplicate_code(what), f"{_noun(what)} `{key}` is given twice", span,
                                             "given again here",
                                             help=f"the first is at line {spans[key].line}; keep one")])
            offset = _skip_space(text, key_end)
            if not text.startswith(":", offset):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, offset)
            value, offset = decoder.raw_decode(text, _skip_space(text, offset + 1))
            if nested_duplicates:
                raise DiagnosticError([error(_duplicate_code(what), f"{_noun(what)} `{key}`: key "
                                             f"`{nested_duplicates[0]}` is given twice inside its value", span,
                                             "in this value", help="keep one of them")])
            data[key], spans[key] = value, span
            offset = _skip_space(text, offset)
            if text.startswith("}", offset):
                offset += 1
                break
            if not text.startswith(",", offset):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, offset)
            offset = _skip_space(text, offset + 1)
    if _skip_space(text, offset) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip_space(text, offset))
    return Document(data, spans)


def yaml_document(source: SourceFile, what: str, hint: str) -> Document:
    """Parse YAML with the safe loader; numbers exact, dates as text, duplicates and deep nesting refused."""
    import yaml

    loader = _loader_class()(source.text)
    try:
        try:
            node = loader.get_single_node()
            spans = _yaml_key_spans(source, node, what)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except _TooDeep as exc:
        raise DiagnosticError([error(f"bad-{what}", f"objects and lists nest more than {MAX_INPUT_NESTING} deep",
                                     source.span_at(exc.line, exc.column), "too deep here",
                                     help="see docs/limits.md")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        span = source.span_at(mark.line + 1, mark.column + 1) if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise DiagnosticError([error(f"bad-{what}", f"malformed YAML: {problem}", span, "here", help=hint)]) \
            from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value the safe constructors cannot build
        raise DiagnosticError([error(f"bad-{what}", f"malformed YAML: {exc}", help=hint)]) from None
    return Document(data, spans)


class _TooDeep(Exception):
    def __init__(self, line: int, column: int) -> None:
        self.line, self.column = line, column


_LOADER: Any = None


def _loader_class() -> Any:
    """The safe loader with exact numbers, text dates and a nesting limit (built once)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_INPUT_NESTING:
                    mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                    raise _TooDeep(mark.line + 1, mark.column + 1)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def exact_float(loader: Any, node: Any) -> Any:
        return decimal_or_bad(loader.construct_scalar(node).replace("_", ""))

    def guarded_int(loader: Any, node: Any) -> Any:
        text = loader.construct_scalar(node)
        if len(text) > 4 * MAX_NUMBER_DIGITS:
            return BadNumber(text, f"has more than {MAX_NUMBER_DIGITS} digits")
        try:
            number = yaml.SafeLoader.construct_yaml_int(loader, node)
        except ValueError:
            return BadNumber(text, "is not a whole number")
        checked = within_limits(Decimal(number))
        return number if isinstance(checked, Decimal) else checked

    def text_date(loader: Any, node: Any) -> Any:
        return loader.construct_scalar(node)

    Loader.add_constructor("tag:yaml.org,2002:float", exact_float)
    Loader.add_constructor("tag:yaml.org,2002:int", guarded_int)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", text_date)
    _LOADER = Loader
    return Loader


def _yaml_key_spans(source: SourceFile, node: Any, what: str) -> dict[str, Span]:
    """Where each top-level key is; a key given twice, at any depth, is an error naming its top-level key."""
    import yaml

    spans: dict[str, Span] = {}
    if not isinstance(node, yaml.MappingNode):
        return spans
    for key_node, value_node in node.value:
        key = str(key_node.value)
        span = source.span_at(key_node.start_mark.line + 1, key_node.start_mark.column + 1, len(key))
        if key in spans:
            raise DiagnosticError([error(_duplicate_code(what), f"{_noun(what)} `{key}` is given twice", span,
                                         "given again here", help=f"the first is at line {spans[key].line}; keep one")])
        spans[key] = span
        inner = _nested_duplicate(value_node, set())
        if inner is not None:
            inner_span = source.span_at(inner.start_mark.line + 1, inner.start_mark.column + 1, len(str(inner.value)))
            raise DiagnosticError([error(_duplicate_code(what), f"{_noun(what)} `{key}`: key `{inner.value}` is given "
                                         "twice inside its value", inner_span, "given again here",
                                         help="keep one of them")])
    return spans


def _nested_duplicate(node: Any, seen: set[int]) -> Any:
    """The first key node that repeats a key of its mapping, below `node` (aliases visited once)."""
    import yaml

    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in keys:
                        return key_node
                    keys.add(key_node.value)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None
