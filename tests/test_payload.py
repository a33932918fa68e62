"""spoolcron.core.payload: what a spool file carries, its meta keys, and its errors; and the
round trip of a payload through a spool file (encode -> file -> decode)."""

from __future__ import annotations

import json
import re
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from spoolcron.core import payload as payload_module
from spoolcron.core.payload import (
    MARKER,
    MAX_BODY_SIZE,
    META_DJANGO_TASK,
    META_MANUAL_RUN,
    META_OVERLAP,
    PREFIX,
    Payload,
    check_arguments,
    encode_body,
    job_file_prefix,
)
from spoolcron.exceptions import InvalidArguments, PayloadError, SpoolcronError
from spoolcron.spool import codec, files
from spoolcron.spool.payloads import read_payload, write_payload

META_KEYS = (META_OVERLAP, META_MANUAL_RUN, META_DJANGO_TASK)


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def job(**fields: Any) -> Payload:
    return Payload(**{"task": "app.tasks.send", "job_id": "j1", "run_after": 1000.5, **fields})


class Unencodable:
    def __repr__(self) -> str:
        return "<Unencodable>"


# --- Payload ------------------------------------------------------------------------------


def test_the_meta_keys_are_the_ones_spoolcron_writes() -> None:
    assert META_KEYS == ("overlap", "entry_manual_run", "django_task")


def test_file_name_is_the_job_prefix_and_the_attempt() -> None:
    assert job_file_prefix("j1") == PREFIX + "spoolcron_j1_"
    assert job(attempt=3).file_name == PREFIX + "spoolcron_j1_3"
    assert job().next_attempt(2000.0) == job(attempt=2, run_after=2000.0)


def test_spool_args_carry_the_marker_the_task_and_the_job() -> None:
    args = job().spool_args()
    assert {key: args[key] for key in (MARKER, b"task", b"job")} == {
        MARKER: b"1",
        b"task": b"app.tasks.send",
        b"job": b"j1",
    }


@pytest.mark.parametrize(
    ("meta", "expected"),
    [({}, "skip"), ({META_OVERLAP: "allow"}, "allow"), ({META_OVERLAP: 1}, "skip")],
)
def test_overlap(meta: dict[str, Any], expected: str) -> None:
    assert job(meta=meta).overlap == expected


@pytest.mark.parametrize(
    ("entry", "meta", "history", "manual"),
    [
        (None, {}, "", None),
        ("nightly", {}, "nightly", None),
        (None, {META_MANUAL_RUN: "nightly"}, "nightly", "nightly"),
        ("fired", {META_MANUAL_RUN: "by-hand"}, "fired", "by-hand"),
        (None, {META_MANUAL_RUN: ["not", "a", "name"]}, "", None),
    ],
)
def test_history_entry_and_manual_entry(
    entry: str | None, meta: dict[str, Any], history: str, manual: str | None
) -> None:
    payload = job(entry=entry, meta=meta)
    assert payload.history_entry == history
    assert payload.manual_entry == manual


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({}, None),
        ({META_DJANGO_TASK: "default"}, None),
        (
            {META_DJANGO_TASK: {"backend": "spooler", "queue_name": "mail"}},
            {"backend": "spooler", "queue_name": "mail"},
        ),
        ({META_DJANGO_TASK: {"backend": 7}}, {"backend": "7", "queue_name": ""}),
    ],
)
def test_framework(meta: dict[str, Any], expected: dict[str, str] | None) -> None:
    assert job(meta=meta).framework == expected


# --- check_arguments ----------------------------------------------------------------------


def test_check_arguments_returns_a_list_and_a_dict() -> None:
    assert check_arguments("t", None, None) == ([], {})
    assert check_arguments("t", (1, "a"), {"k": 2}) == ([1, "a"], {"k": 2})


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ("abc", None, "Cannot schedule task 't': args must be a list, not 'abc'."),
        (b"ab", None, "Cannot schedule task 't': args must be a list, not b'ab'."),
        (5, None, "Cannot schedule task 't': args must be a list, not 5."),
        ({1, 2}, None, "Cannot schedule task 't': args must be a list, not {1, 2}."),
        (None, [1], "Cannot schedule task 't': kwargs must be a dict, not [1]."),
        (None, {1: "x"}, "Cannot schedule task 't': kwargs keys must be strings, not 1."),
    ],
)
def test_check_arguments_names_the_bad_shape(args: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(InvalidArguments, match=exactly(message)):
        check_arguments("t", args, kwargs)


# --- encode_body --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "place"),
    [
        ({"args": [1, Unencodable()]}, "args[1] = <Unencodable>"),
        ({"kwargs": {"to": Unencodable()}}, "kwargs['to'] = <Unencodable>"),
        ({"meta": {"mine": Unencodable()}}, "meta['mine'] = <Unencodable>"),
    ],
)
def test_encode_body_names_what_json_cannot_carry(fields: dict[str, Any], place: str) -> None:
    message = f"Cannot schedule task 'app.tasks.send': {place} cannot be stored as JSON."
    with pytest.raises(InvalidArguments, match=exactly(message)):
        encode_body(job(**fields))


def test_encode_body_without_a_single_culprit() -> None:
    # Every value encodes on its own; the whole does not (a key JSON cannot carry).
    message = "Cannot schedule task 'app.tasks.send': its arguments are not JSON."
    with pytest.raises(InvalidArguments, match=exactly(message)):
        encode_body(job(kwargs={("a", "b"): 1}))


def test_encode_body_refuses_more_than_the_limit() -> None:
    payload = job(args=["x" * MAX_BODY_SIZE])
    size = len(payload.to_body())
    message = (
        f"Cannot schedule task 'app.tasks.send': its arguments take {size} bytes as JSON; "
        f"the limit is {MAX_BODY_SIZE} bytes, so pass a reference (a database id, a file "
        "path) instead."
    )
    with pytest.raises(InvalidArguments, match=exactly(message)):
        encode_body(payload)


def test_encode_body_accepts_exactly_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    body = job().to_body()
    monkeypatch.setattr(payload_module, "MAX_BODY_SIZE", len(body))
    assert encode_body(job()) == body
    monkeypatch.setattr(payload_module, "MAX_BODY_SIZE", len(body) - 1)
    with pytest.raises(InvalidArguments, match="the limit is"):
        encode_body(job())


# --- from_body ----------------------------------------------------------------------------


def body(**changes: Any) -> bytes:
    document = json.loads(job().to_body())
    document.update(changes)
    for key in [k for k, v in changes.items() if v is ...]:
        del document[key]
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "has a body that is not JSON: Expecting value: line 1 column 1 (char 0)."),
        (
            b"\xff",
            "has a body that is not JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte.",
        ),
        (b"[1]", "has an unsupported payload version None."),
        (body(v=2), "has an unsupported payload version 2."),
        (body(v=...), "has an unsupported payload version None."),
        (body(task=...), "payload lacks the field 'task'."),
        (body(enqueued_at=...), "payload lacks the field 'enqueued_at'."),
        (body(job=5), "payload field 'job' has the wrong type: 5."),
        (body(run_after="soon"), "payload field 'run_after' has the wrong type: 'soon'."),
        (body(args={}), "payload field 'args' has the wrong type: {}."),
        (body(meta=[]), "payload field 'meta' has the wrong type: []."),
        (body(attempt=True), "payload field 'attempt' has the wrong type: True."),
        (body(attempt=1.0), "payload field 'attempt' has the wrong type: 1.0."),
    ],
)
def test_from_body_names_the_file_and_the_fault(data: bytes, why: str) -> None:
    with pytest.raises(PayloadError, match=exactly(f"Spool file 'f' {why}")) as raised:
        Payload.from_body(data, name="f")
    assert isinstance(raised.value, SpoolcronError)
    assert isinstance(raised.value, ValueError)


def test_from_body_takes_whole_numbers_for_times() -> None:
    payload = Payload.from_body(body(run_after=1000, enqueued_at=999), name="f")
    assert (payload.run_after, payload.enqueued_at) == (1000.0, 999.0)
    assert isinstance(payload.run_after, float)


# --- the round trip -----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=40)
metas = st.builds(
    lambda ours, users: {**users, **ours},
    st.fixed_dictionaries(
        {},
        optional={
            META_OVERLAP: st.sampled_from(["skip", "allow"]),
            META_MANUAL_RUN: names,
            META_DJANGO_TASK: st.fixed_dictionaries({"backend": names, "queue_name": names}),
        },
    ),
    st.dictionaries(st.text(max_size=10).filter(lambda k: k not in META_KEYS), json_values),
)
payloads = st.builds(
    Payload,
    task=names,
    job_id=st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=40),
    run_after=st.floats(min_value=0, max_value=4e9),
    args=st.lists(json_values, max_size=5),
    kwargs=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    meta=metas,
    attempt=st.integers(min_value=1, max_value=1000),
    enqueued_at=st.floats(min_value=0, max_value=4e9),
    entry=st.none() | names,
)
EVERY_META_KEY = Payload(
    task="app.tasks.send",
    job_id="0123abcd",
    run_after=1_795_000_000.25,
    args=[1, "two", [3.5, None], {"four": True}],
    kwargs={"to": "ops@example.com", "nested": {"a": [1, 2]}},
    meta={
        META_OVERLAP: "allow",
        META_MANUAL_RUN: "nightly",
        META_DJANGO_TASK: {"backend": "spooler", "queue_name": "mail"},
        "trace": {"id": "abc", "hops": [1, 2]},
    },
    attempt=3,
    enqueued_at=1_794_999_990.5,
    entry="nightly",
)


@given(payloads)
@example(EVERY_META_KEY)
def test_a_payload_survives_a_spool_file(payload: Payload) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write_payload(Path(directory), payload)
        assert path.name == payload.file_name
        file = files.read(path)
        assert file.is_ours
        assert file.args == payload.spool_args()
        assert file.at <= payload.run_after + 1e-6  # due no later than the job
        assert read_payload(file) == payload


@given(payloads)
@example(EVERY_META_KEY)
def test_a_payload_survives_the_codec(payload: Payload) -> None:
    args, data = codec.decode(codec.encode(payload.spool_args(), encode_body(payload)))
    assert args == payload.spool_args()
    decoded = Payload.from_body(data, name="f")
    assert decoded == payload
    assert (decoded.overlap, decoded.history_entry, decoded.manual_entry, decoded.framework) == (
        payload.overlap,
        payload.history_entry,
        payload.manual_entry,
        payload.framework,
    )
