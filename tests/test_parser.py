"""Parser: source text -> AST, and syntax errors -> located diagnostics."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from eligib.language import ast
from eligib.language.diagnostics import DiagnosticError
from eligib.language.parser import parse

HEADER = 'protocol demo:\n    title: "Demo"\n    version: "1"\n'


def body_of(expression: str) -> ast.Expr:
    text = HEADER + "facts:\n    x: integer\n" + f'inclusion c "C":\n    record: "r"\n    {expression}\n'
    return parse(text).criteria[0].body


def syntax_error(text: str):
    with pytest.raises(DiagnosticError) as caught:
        parse(text, "bad.elig")
    [diagnostic] = caught.value.diagnostics
    return diagnostic


def test_header_and_sections():
    protocol = parse(HEADER + 'facts:\n    age: integer years, from 0 years to 120 years, "Age"\n'
                     'define adult: age >= 18 years\n'
                     'exclusion old "Old":\n    record: "r"\n    only if adult\n    age > 85 years\n')
    assert protocol.header.name == "demo" and protocol.header.get("title") == "Demo"
    [fact] = protocol.facts
    assert fact.type == ast.FactType("integer", "years") and fact.description == "Age"
    assert fact.low.value == 0 and fact.high.text == "120 years"
    [definition] = protocol.definitions
    assert definition.name == "adult"
    [criterion] = protocol.criteria
    assert criterion.kind == "exclusion" and criterion.guard == ast.NameRef("adult")


def test_spans_do_not_take_part_in_equality():
    first, second = body_of("x >= 1"), body_of("x   >=   1")
    assert first == second
    assert first.span != second.span


def test_chained_comparison_and_precedence():
    node = body_of("18 <= x <= 85 and not x == 3 or x > 100")
    assert isinstance(node, ast.Or)
    left = node.operands[0]
    assert isinstance(left, ast.And)
    assert left.operands[0] == ast.Compare((ast.QuantityLiteral(Fraction(18), None, "18"), ast.NameRef("x"),
                                            ast.QuantityLiteral(Fraction(85), None, "85")), ("<=", "<="))
    assert isinstance(left.operands[1], ast.Not)


def test_quantities_keep_exact_decimals_and_units():
    node = body_of("x <= 1.5 * 3 g/dL")
    product = node.operands[1]
    assert product.operands[0].value == Fraction(3, 2)
    assert product.operands[1].unit == "g/dL"


def test_conditional_within_membership_none():
    node = body_of("x <= 5 if x is a else x in (b, c)")
    assert isinstance(node, ast.Conditional)
    assert node.condition == ast.IsValue(ast.NameRef("x"), "a")
    assert node.otherwise == ast.InSet(ast.NameRef("x"), ("b", "c"))
    window = body_of("d within 6 months before s")
    assert window == ast.Within(ast.NameRef("d"), ast.QuantityLiteral(Fraction(6), "months", "6 months"),
                                "before", ast.NameRef("s"))
    assert body_of("x is not none") == ast.IsNone(ast.NameRef("x"), negated=True)


def test_blocks_with_named_paths_and_nesting():
    text = HEADER + ('inclusion c "C":\n    record: "r"\n    any of\n        first: x > 1\n'
                     '        second: all of\n            x < 10\n            y\n        z\n')
    block = parse(text).criteria[0].body
    assert block.kind == "any"
    assert [item.name for item in block.items] == ["first", "second", None]
    assert block.items[1].body.kind == "all" and len(block.items[1].body.items) == 2


def test_record_wording_spanning_lines_is_one_paragraph():
    text = HEADER + 'inclusion c "C":\n    record: "Aged 18-85\n        years (inclusive)."\n    true\n'
    assert parse(text).criteria[0].record == "Aged 18-85 years (inclusive)."


def test_comments_are_ignored():
    text = "# leading\n" + HEADER + "# between\nfacts:\n    x: boolean  # trailing\n\n    # inside\n    y: boolean\n"
    assert [f.name for f in parse(text).facts] == ["x", "y"]


def test_syntax_error_is_located_with_expectations():
    diagnostic = syntax_error(HEADER + 'inclusion c "C":\n    x >= \n')
    assert diagnostic.code == "syntax" and diagnostic.message == "unexpected end of line"
    assert (diagnostic.span.line, diagnostic.span.column) == (5, 9)
    assert "a number" in diagnostic.help


def test_unexpected_character():
    diagnostic = syntax_error(HEADER + 'inclusion c "C":\n    x >= 3 $\n')
    assert diagnostic.message == "unexpected character `$`"
    assert (diagnostic.span.line, diagnostic.span.column) == (5, 12)


def test_bad_indentation_points_at_the_line():
    diagnostic = syntax_error(HEADER + "facts:\n    a: boolean\n      b: boolean\n")
    assert diagnostic.code == "indentation" and diagnostic.span.line == 6
    diagnostic = syntax_error(HEADER + 'inclusion c "C":\n        x\n    y\n')
    assert diagnostic.code == "indentation" and diagnostic.span.line == 6


def test_impossible_date_literal():
    diagnostic = syntax_error(HEADER + 'inclusion c "C":\n    d < 2026-02-30\n')
    assert diagnostic.code == "bad-date" and diagnostic.span.column == 9


def test_nesting_is_bounded():
    deep = "(" * 200 + "x" + ")" * 200
    diagnostic = syntax_error(HEADER + f'inclusion c "C":\n    {deep}\n')
    assert diagnostic.code == "too-deep"
    assert syntax_error(HEADER + f'inclusion c "C":\n    {"not " * 400}x\n').code == "too-deep"


def test_size_is_bounded():
    assert syntax_error("#" * 1_000_001).code == "too-large"


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_any_text_parses_or_gives_a_clean_diagnostic(text):
    try:
        parse(text, "fuzz.elig")
    except DiagnosticError as caught:
        assert caught.diagnostics and all(d.code for d in caught.diagnostics)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["protocol", "x", ":", "\n", "    ", "facts", "inclusion", '"s"', "any", "of",
                                 "and", "(", ")", "1", "%", "within", "months", "before", "if", "else", "is",
                                 "none", "-", "2026-01-01", "#c", "define"]), max_size=40).map(" ".join))
def test_token_soup_parses_or_gives_a_clean_diagnostic(text):
    try:
        parse(HEADER + text, "fuzz.elig")
    except DiagnosticError as caught:
        assert caught.diagnostics[0].span is not None


def test_parsed_protocol_cache_round_trips_and_stays_small(tmp_path, monkeypatch):
    from eligib.language import loader
    from eligib.language.source import SourceFile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(loader, "MAX_CACHE_FILES", 3)
    text = (HEADER + 'facts:\n    x: decimal g/L, from 0 g/L to 5.5 g/L\n'
            'inclusion c "C":\n    record: "r"\n    x >= 1.5 g/L\n')
    for index in range(5):
        path = str(tmp_path / f"p{index}.elig")
        loader.store(text, path, parse(text, path))
    assert len(list((tmp_path / "eligib").glob("*.json"))) == 3
    cached = loader.load(SourceFile(str(tmp_path / "p4.elig"), text), str(tmp_path / "p4.elig"))
    assert cached == parse(text, str(tmp_path / "p4.elig"))
    assert cached.facts[0].high.value == Fraction("5.5")


def test_nodes_behave_as_frozen_dataclasses():
    """AST classes are made by `nodes.node` (cheaper to create than frozen dataclasses, issue 11):
    equal by meaning (spans and ids left out), hashable alike, immutable, with a dataclass repr."""
    import dataclasses

    import pytest

    from eligib.language import ast
    from eligib.language.source import Span

    first = ast.NameRef("lvef", span=Span("a.elig", 1, 1, 1, 5))
    second = ast.NameRef("lvef")
    assert first == second and hash(first) == hash(second) and first.nid != second.nid
    assert first != ast.NameRef("ecog") and first != ast.BoolLiteral(True)
    assert repr(first) == "NameRef(name='lvef')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "ecog"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del first.name
    moved = dataclasses.replace(first, name="ecog")
    assert moved.name == "ecog" and moved.span == first.span and moved.nid != first.nid


SLIPS = [  # (body, message, underlined text, help)
    ("sex = female", "`=` is not a comparison", "=",
     "write `is` to test an enumeration value (`sex is female`), `==` to compare numbers or dates (`ecog == 1`)"),
    ("ecog => 1", "`=>` is not a comparison", "=>", "the comparisons are `<`, `<=`, `>`, `>=`, `==`, `!=`"),
    ("ecog is <= 1", "`is <=` mixes a value test with a comparison", "is <=", "compare without `is`: `ecog <= 1`"),
    ("if lvef >= 45 % then ecog <= 1 else ecog <= 2", "a conditional is written `A if C else B`", "if",
     "write `ecog <= 1 if lvef >= 45 % else ecog <= 2`"),
    ("ecog <= 1 only if sex is female", "`only if` after a criterion's body", "only if",
     "put `only if CONDITION` on its own line after `record:`, before the body"),
]


@pytest.mark.parametrize(("body", "message", "underlined", "help_line"), SLIPS, ids=[s[0] for s in SLIPS])
def test_common_slips_say_what_to_write(body: str, message: str, underlined: str, help_line: str) -> None:
    text = HEADER + "facts:\n    sex: one of (female, male)\n    ecog: integer\n    lvef: decimal %\n" + (
        f'inclusion c "C":\n    record: "r"\n    {body}\n')
    found = syntax_error(text)
    span = found.span
    assert (found.code, found.message, found.help) == ("syntax", message, help_line)
    assert text.splitlines()[span.line - 1][span.column - 1:span.end_column - 1] == underlined


def test_an_incomplete_only_if_line_is_not_taken_for_a_misplaced_one() -> None:
    text = HEADER + "facts:\n    sex: one of (female, male)\n" + (
        'inclusion c "C":\n    record: "r"\n    only if sex is\n    sex is female\n')
    assert syntax_error(text).message == "unexpected end of line"
