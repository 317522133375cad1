"""Schema evolution, offline: each current .avsc reads what its previous versions wrote.

The previous versions of a schema are the files under ``schemas/avro/released/`` (each
schema as last released) and ``schemas/avro/earlier/`` with the same full name (namespace
and name). BACKWARD compatibility, as the registry enforces it per subject, means the current
schema as reader resolves every record a previous version wrote. Two checks must agree: Avro's
resolution rules (tests/support_registry.py) and fastavro reading generated records.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from schemas.codec import AVRO_DIR, SCHEMA_IDS, load_schema
from tests.support_registry import (
    MUTATIONS,
    avro_values,
    backward_problems,
    read_problem,
)

RELEASED = AVRO_DIR / "released"


def full_name(filename: str) -> str:
    schema = load_schema(filename)
    return f"{schema.get('namespace', '')}.{schema['name']}"


CURRENT = {full_name(path.name): path.name for path in AVRO_DIR.glob("*.avsc")}
PREVIOUS = sorted(
    str(path.relative_to(AVRO_DIR))
    for folder in ("released", "earlier")
    for path in (AVRO_DIR / folder).glob("*.avsc")
)
PAIRS = [(previous, CURRENT.get(full_name(previous))) for previous in PREVIOUS]
COMPATIBLE = [m for m in MUTATIONS if m.compatible]
INCOMPATIBLE = [m for m in MUTATIONS if not m.compatible]


def test_every_schema_the_codec_writes_has_a_released_version():
    released = {path.name for path in RELEASED.glob("*.avsc")}
    written = {filename for _, filename in SCHEMA_IDS.values()}
    assert written <= released, f"copy {sorted(written - released)} to {RELEASED}"


@pytest.mark.parametrize(("previous", "current"), PAIRS)
def test_every_previous_version_names_a_current_schema(previous, current):
    assert current is not None, f"{previous}: no current schema is {full_name(previous)}"


@pytest.mark.parametrize(("previous", "current"), PAIRS)
def test_current_schema_is_backward_compatible_with_each_previous_version(previous, current):
    assert backward_problems(load_schema(previous), load_schema(current)) == []


@pytest.mark.parametrize(("previous", "current"), PAIRS)
@given(data=st.data())
def test_current_schema_reads_records_written_with_each_previous_version(previous, current, data):
    writer, reader = load_schema(previous), load_schema(current)
    assert read_problem(writer, reader, data.draw(avro_values(writer))) is None


@pytest.mark.parametrize("mutation", INCOMPATIBLE, ids=lambda m: m.name)
def test_an_incompatible_change_fails_both_checks(mutation):
    before, after = mutation.apply()
    assert backward_problems(before, after) != []
    # fastavro fails on some record the old schema writes (find raises if none does)
    find(
        avro_values(before),
        lambda record: read_problem(before, after, record) is not None,
        settings=settings(phases=[Phase.generate]),  # any failing record will do: no shrinking
    )


@pytest.mark.parametrize("mutation", COMPATIBLE, ids=lambda m: m.name)
@given(data=st.data())
def test_a_compatible_change_passes_both_checks(mutation, data):
    before, after = mutation.apply()
    assert backward_problems(before, after) == []
    assert read_problem(before, after, data.draw(avro_values(before))) is None


@settings(deadline=None)  # the avro package's check is slow on a loaded machine
@given(data=st.data())
def test_a_defaulted_new_field_is_read_by_old_and_new_readers(data):
    old, new = MUTATIONS[0].apply()
    assert backward_problems(old, new) == [] and backward_problems(new, old) == []
    old_record = data.draw(avro_values(old))
    assert read_problem(old, new, old_record) is None  # mid takes its default, None
    new_record = {**old_record, "mid": data.draw(st.none() | st.floats())}
    assert read_problem(new, old, new_record) is None  # an old reader skips mid


def test_a_removed_field_without_default_breaks_only_old_readers():
    removal = next(m for m in COMPATIBLE if m.name == "a field without a default removed")
    old, new = removal.apply()
    assert backward_problems(old, new) == []
    (problem,) = backward_problems(new, old)
    assert "reader_field_missing_default_value" in problem and "confidence" in problem
