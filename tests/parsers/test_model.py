"""Rows: what mypyc needs of them holds in the source (see the module docstring)."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest
from test_records import COMPILED, init_matches_fields

from mailtriage.parsers import model

ROWS = [
    cls
    for cls in vars(model).values()
    if dataclasses.is_dataclass(cls)
    and isinstance(cls, type)
    and cls is not model.Batch
]


@pytest.mark.skipif(COMPILED, reason="checks the source; the compiled class agrees")
@pytest.mark.parametrize("cls", ROWS, ids=lambda cls: cls.__name__)
def test_row_init_takes_its_fields_in_order(cls: type) -> None:
    init_matches_fields(cls)


@pytest.mark.parametrize("cls", ROWS, ids=lambda cls: cls.__name__)
def test_row_annotations_keep_their_unions_at_run_time(cls: type) -> None:
    # The store derives its Arrow schema from these, compiled or not.
    for name, hint in typing.get_type_hints(cls).items():
        if isinstance(hint, types.UnionType):
            assert type(None) in typing.get_args(hint), name
        else:
            assert hint in (str, int, float, bool), (name, hint)
