"""Reading a Z3 model at once (logic/models.py) gives what reading it variable by variable gives."""

from __future__ import annotations

import z3
from hypothesis import given, strategies as st

from eligib.logic.models import ModelValues
from eligib.values.types.base import z3_number

NUMBERS = st.fractions(min_value=-10**6, max_value=10**6, max_denominator=10**4)


@given(st.lists(NUMBERS, min_size=1, max_size=6), st.lists(st.integers(-10**9, 10**9), max_size=4),
       st.lists(st.booleans(), max_size=4))
def test_every_value_reads_as_z3_gives_it(reals, ints, bools):
    ctx = z3.Context()
    solver = z3.Solver(ctx=ctx)
    variables = []
    for index, value in enumerate(reals):
        var = z3.Real(f"r{index}'" if index % 2 else f"r[{index}].x", ctx)  # names SMT-LIB quotes, and plain ones
        solver.add(var == z3.RealVal(f"{value.numerator}/{value.denominator}", ctx))
        variables.append(var)
    for index, value in enumerate(ints):
        var = z3.Int(f"i{index}?", ctx)
        solver.add(var == value)
        variables.append(var)
    for index, value in enumerate(bools):
        var = z3.Bool(f"b{index}", ctx)
        solver.add(var == value)
        variables.append(var)
    unconstrained = [z3.Real("free", ctx), z3.Int("free_int", ctx), z3.Bool("free_bool", ctx)]
    assert solver.check() == z3.sat
    model = solver.model()
    read = ModelValues(model, {})
    for var in variables + unconstrained:
        assert read.value(var) == z3_number(model.eval(var, model_completion=True))


def test_an_algebraic_number_is_left_to_z3():
    """A nonlinear model may hold an irrational number, written as a root object: the text is not
    parsed, the value is read through Z3 as before (with the same outcome)."""
    ctx = z3.Context()
    x = z3.Real("x", ctx)
    solver = z3.Solver(ctx=ctx)
    solver.add(x * x == 2, x > 0)
    assert solver.check() == z3.sat
    model = solver.model()
    assert not z3.is_rational_value(model.eval(x, model_completion=True))

    def outcome(read):
        try:
            return read()
        except Exception as problem:  # the kind of failure is what is compared
            return type(problem)

    assert outcome(lambda: ModelValues(model, {}).value(x)) == \
        outcome(lambda: z3_number(model.eval(x, model_completion=True)))
