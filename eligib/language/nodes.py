"""How AST node classes are made: immutable dataclasses, created cheaply (see `node`)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import Any, ClassVar, TypeVar, dataclass_transform

_N = TypeVar("_N")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def node(cls: type[_N]) -> type[_N]:
    """An immutable node class: a dataclass whose equality, hash, repr and immutability come from `Node`.

    Why not `@dataclass(frozen=True)`: that generates six methods per class by compiling source text,
    about 1 ms a class, and the AST's 42 classes are created on every start of `eligib`; this makes
    only `__init__`. Equality, hash and repr are those of a frozen dataclass (fields with compare=False
    or repr=False left out); assigning to a field after construction raises FrozenInstanceError."""
    made: Any = dataclass(eq=False, repr=False)(cls)
    made._compared = tuple(f.name for f in fields(made) if f.compare)
    made._shown = tuple(f.name for f in fields(made) if f.repr)
    return made  # type: ignore[no-any-return]


class Frozen:
    """Equality, hash, repr and immutability of a frozen dataclass, shared by every `node` class."""

    _compared: ClassVar[tuple[str, ...]]
    _shown: ClassVar[tuple[str, ...]]
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name not in self.__dataclass_fields__:  # only __init__ sets a field, once
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._compared)

    def __hash__(self) -> int:
        """By meaning, like a frozen dataclass; computed once (a node never changes, and the checker
        hashes whole subtrees when it compares conditions)."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, name) for name in self._compared))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{self.__class__.__qualname__}({shown})"
