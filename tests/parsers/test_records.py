"""Records: what mypyc needs of them holds in the source (see the module docstring)."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest

from mailtriage.parsers import records

RECORDS = [
    cls
    for cls in vars(records).values()
    if dataclasses.is_dataclass(cls) and isinstance(cls, type)
]
# mypyc compiles __init__ to native code, which keeps no signature to inspect.
COMPILED = not (records.__file__ or "").endswith(".py")


def init_matches_fields(cls: type) -> None:
    """Assert that ``cls.__init__`` takes the dataclass fields, in order, with the
    same defaults and types, and stores each argument in its field."""
    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    empty = inspect.Parameter.empty
    declared = [
        (f.name, empty if f.default is dataclasses.MISSING else f.default)
        for f in fields
    ]
    assert [(p.name, p.default) for p in params] == declared
    hints, init_hints = typing.get_type_hints(cls), typing.get_type_hints(cls.__init__)
    assert [init_hints[f.name] for f in fields] == [hints[f.name] for f in fields]

    values = [object() for _ in fields]
    made = cls(*values)
    assert [getattr(made, f.name) for f in fields] == values


@pytest.mark.skipif(COMPILED, reason="checks the source; the compiled class agrees")
@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_record_init_takes_its_fields_in_order(cls: type) -> None:
    init_matches_fields(cls)


def test_every_record_but_the_envelope_has_a_kind_of_its_own() -> None:
    kinds = {cls: getattr(cls, "kind", None) for cls in RECORDS}
    assert kinds.pop(records.Envelope) is None
    assert all(isinstance(kind, str) for kind in kinds.values())
    assert len(set(kinds.values())) == len(kinds)
    assert all("kind" not in {f.name for f in dataclasses.fields(c)} for c in kinds)


def test_kind_reads_the_same_on_a_record_and_its_class() -> None:
    record = records.QmgrRemoved("4B1E3A1F2")
    assert record.kind == records.QmgrRemoved.kind == "qmgr_removed"
