"""Queues, remote requests and nginx requests without uWSGI: settings, routing, signing,
admission and the uwsgi-protocol client (against a loopback socket; the real uWSGI is in
tests/integration/test_queues_uwsgi.py and test_nginx_uwsgi.py)."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

import spoolcron
from spoolcron.checks import ServerOptions
from spoolcron.conf import get_settings
from spoolcron.core.payload import Payload
from spoolcron.core.registry import Task
from spoolcron.core.remote import (
    NGINX_TASK_ARG,
    PAYLOAD_ARG,
    SIGNATURE_ARG,
    remote_payload,
    request_args,
)
from spoolcron.core.routing import Routing
from spoolcron.exceptions import (
    InvalidArguments,
    PayloadError,
    RemoteSpoolError,
    SpoolcronImproperlyConfigured,
)
from spoolcron.operations.config import uwsgi_config
from spoolcron.operations.jobs import cancel_job, pending
from spoolcron.operations.upcoming import upcoming as upcoming_runs
from spoolcron.queue_checks import check_queues
from spoolcron.runtime.admission import admit
from spoolcron.spool import codec, files, received, remote
from spoolcron.spool.pending import FilePendingStore
from tests.testapp import tasks

KEY = b"k" * 32
OLD_KEY = b"o" * 32
NOW = 1_800_000_000.0


@pytest.fixture
def queues(tmp_path: Path, settings: Any) -> dict[str, Path]:
    dirs = {name: files.ensure_dir(tmp_path / name) for name in ("spool", "slow", "wide")}
    settings.SPOOLCRON = {
        "SPOOL_DIR": str(dirs["spool"]),
        "FAILED_DIR": str(tmp_path / "failed"),
        "QUEUES": {
            "slow": {"spool_dir": str(dirs["slow"])},
            "wide": {"spool_dir": str(dirs["wide"]), "processes": 4},
            "far": {"address": "127.0.0.1:9", "timeout": 0.5},
        },
        "REMOTE_KEYS": [KEY.decode()],
        "NGINX_TOKENS": ["t" * 20],
    }
    return dirs


# --- settings ---------------------------------------------------------------------------------


def test_queues_are_read_with_the_default_one_first(queues: dict[str, Path]) -> None:
    conf = get_settings()
    assert list(conf.queues) == ["default", "slow", "wide", "far"]
    assert conf.queue(None).spool_dir == queues["spool"]
    assert conf.queue("wide").processes == 4
    assert conf.queue("far").is_remote
    assert [q.name for q in conf.local_queues] == ["default", "slow", "wide"]


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        (
            {"a b": {"spool_dir": "/x"}},
            "SPOOLCRON['QUEUES'] has the queue name 'a b': use 1-64 letters, digits, '_' or '-'.",
        ),
        (
            {"slow": {"spool_dir": "/x", "threads": 2}},
            "SPOOLCRON['QUEUES']['slow'] has the unknown key 'threads' for a local queue; "
            "valid keys are processes, spool_dir.",
        ),
        (
            {"slow": {}},
            "SPOOLCRON['QUEUES']['slow'] needs 'spool_dir' (its own uWSGI --spooler directory) "
            "or 'address' (a remote uWSGI instance), not {}.",
        ),
        (
            {"slow": {"spool_dir": "/x", "processes": 0}},
            "SPOOLCRON['QUEUES']['slow']['processes'] must be a whole number >= 1, not 0.",
        ),
        (
            {"far": {"address": "nowhere"}},
            "SPOOLCRON['QUEUES']['far']['address'] must be 'host:port' or a unix socket path, "
            "not 'nowhere'.",
        ),
        (
            {"default": {"spool_dir": "/x"}},
            "SPOOLCRON['QUEUES']['default'] may only set 'processes': the default queue is "
            "SPOOL_DIR.",
        ),
    ],
)
def test_a_bad_queue_setting_is_one_clear_sentence(
    settings: Any, tmp_path: Path, queues: dict[str, Any], message: str
) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path), "QUEUES": queues}
    with pytest.raises(SpoolcronImproperlyConfigured) as caught:
        get_settings()
    assert str(caught.value) == message


def test_a_short_key_is_refused_without_printing_it(settings: Any, tmp_path: Path) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path), "REMOTE_KEYS": ["short-secret"]}
    with pytest.raises(SpoolcronImproperlyConfigured) as caught:
        get_settings()
    assert "short-secret" not in str(caught.value)
    assert str(caught.value) == (
        "SPOOLCRON['REMOTE_KEYS'] must be a list of secrets of at least 16 characters (the "
        "first signs, every one is accepted), not a list of 1 items, not all such secrets."
    )


# --- routing ----------------------------------------------------------------------------------


def only_file(directory: Path) -> codec.SpoolFile:
    [path] = files.list_files(directory)
    return files.read(path)


def test_schedule_writes_into_the_queue_named(queues: dict[str, Path]) -> None:
    job = spoolcron.schedule(tasks.record, ["slowly"], queue="slow")
    file = only_file(queues["slow"])
    assert file.path.name.endswith(f"{job.id}_1")
    assert json.loads(file.body)["meta"] == {"queue": "slow"}
    assert files.list_files(queues["spool"]) == []


@pytest.mark.django_db
def test_listings_cancel_and_health_see_every_local_queue(queues: dict[str, Path]) -> None:
    here = spoolcron.schedule(tasks.record, ["here"], run_after=2, on_commit=False)
    slow = spoolcron.schedule(tasks.record, ["slowly"], run_after=1, queue="slow", on_commit=False)
    listed = pending()
    assert [(j.id, j.place, j.queue) for j in listed] == [
        (slow.id, "spool:slow", "slow"),
        (here.id, "spool", "default"),
    ]
    assert listed[0].as_dict()["queue"] == "slow"
    upcoming, _ = upcoming_runs(count=10)
    assert {run.name for run in upcoming.runs} >= {here.id, slow.id}
    numbers = spoolcron.health(overdue_after=0, now=time.time() + 60)
    assert numbers["pending_spool"] == 2
    assert numbers["overdue"] == 2
    assert numbers["queues"] == {
        "default": {"pending": 1, "overdue": 1},
        "slow": {"pending": 1, "overdue": 1},
        "wide": {"pending": 0, "overdue": 0},
    }
    out = io.StringIO()
    with pytest.raises(CommandError):  # no uWSGI runs here: unhealthy, the numbers still shown
        call_command("spoolcron", "health", stdout=out)
    assert "pending    2 (1 in default, 1 in slow, 0 in wide)" in out.getvalue().splitlines()
    assert cancel_job(slow.id).id == slow.id
    assert files.list_files(queues["slow"]) == []
    assert [j.id for j in pending()] == [here.id]


def test_an_unknown_queue_is_refused_naming_it(queues: dict[str, Path]) -> None:
    with pytest.raises(InvalidArguments) as caught:
        spoolcron.schedule(tasks.record, ["x"], queue="fast")
    assert str(caught.value) == (
        "Cannot schedule task 'tests.testapp.tasks.record': unknown queue 'fast'; "
        "SPOOLCRON['QUEUES'] has 'default', 'slow', 'wide', 'far'."
    )


def test_a_task_option_names_its_queue() -> None:
    # Not registered: a task on a queue the test settings lack would fail others' checks.
    queued = Task(lambda: None, name="tests.queued", routing=Routing.of("q", print, queue="slow"))
    assert queued.routing.queue == "slow"
    with pytest.raises(InvalidArguments) as caught:
        spoolcron.task(name="tests.badly_queued", queue="no way")(lambda: None)
    assert str(caught.value) == (
        "Task 'tests.badly_queued' has queue='no way': a queue name is 1-64 letters, digits, "
        "'_' or '-'."
    )


def test_an_nginx_mapping_must_name_keyword_arguments() -> None:
    def send(group: str) -> None: ...

    with pytest.raises(InvalidArguments) as caught:
        spoolcron.task(name="tests.nginx_bad", nginx={"group": "team"})(send)
    assert str(caught.value) == (
        "Task 'tests.nginx_bad' option nginx maps 'group' to 'team', which is not a keyword "
        "argument of the task."
    )


def test_the_files_store_publishes_into_the_jobs_queue(tmp_path: Path) -> None:
    spool, slow = files.ensure_dir(tmp_path / "spool"), files.ensure_dir(tmp_path / "slow")
    store = FilePendingStore(tmp_path / "pending", spool, dirs={"slow": slow})
    payload = Payload("t", "job1", NOW + 600, meta={"queue": "slow"})
    store.add([(payload, payload.to_body())])
    assert store.get("job1") == payload
    [published] = store.publish_due(NOW + 601)
    assert (published.file_name, published.spool_dir) == (payload.file_name, slow)
    assert [p.name for p in files.list_files(slow)] == [payload.file_name]
    assert store.count() == 0


def test_uwsgi_config_prints_a_spooler_line_per_process(queues: dict[str, Path]) -> None:
    text = uwsgi_config()
    assert text.count(f"spooler = {queues['spool'].resolve()}\n") == 1
    assert text.count(f"spooler = {queues['slow'].resolve()}\n") == 1
    assert text.count(f"spooler = {queues['wide'].resolve()}\n") == 4
    assert "; queue 'far' is remote: 127.0.0.1:9 runs its first spooler" in text


# --- checks -----------------------------------------------------------------------------------


def test_checks_name_a_queue_no_spooler_runs_on(queues: dict[str, Path]) -> None:
    server = ServerOptions(
        spooler_dirs=(queues["spool"], queues["wide"], queues["wide"]),
        spooler_frequency=30,
        has_spoolcron_mule=True,
    )
    found = {(m.id, m.msg) for m in check_queues(server=server)}
    assert found == {
        (
            "spoolcron.E031",
            f"Queue 'slow' has the spool directory {str(queues['slow'])!r}, but no uWSGI "
            "--spooler runs on it: its jobs would never run.",
        ),
        (
            "spoolcron.W032",
            f"Queue 'wide' asks for 4 spooler processes, but uWSGI runs 2 on "
            f"{str(queues['wide'])!r}.",
        ),
    }


def test_checks_warn_of_a_queue_directory_not_made_yet(
    queues: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    settings.SPOOLCRON = {
        **settings.SPOOLCRON,
        "QUEUES": {"later": {"spool_dir": str(tmp_path / "later")}},
    }
    [message] = check_queues()
    assert (message.id, message.msg) == (
        "spoolcron.W030",
        f"Queue 'later' has the spool directory {str(tmp_path / 'later')!r}, which does not "
        "exist yet; uWSGI's --spooler for it or the first job creates it.",
    )


def test_uwsgi_config_lets_a_receiving_socket_take_64_kib(queues: dict[str, Path]) -> None:
    text = uwsgi_config(socket="127.0.0.1:3031")
    assert "socket = 127.0.0.1:3031\n" in text
    assert "buffer-size = 65535\n" in text


def test_checks_refuse_a_remote_queue_without_keys(settings: Any, tmp_path: Path) -> None:
    settings.SPOOLCRON = {
        "SPOOL_DIR": str(tmp_path),
        "QUEUES": {"far": {"address": "10.0.0.5:3031"}},
        "NGINX_TOKENS": ["t" * 20],
    }
    messages = check_queues()
    assert tuple(sorted({m.id for m in messages})) == ("spoolcron.E034", "spoolcron.W035")
    [error] = [m for m in messages if m.id == "spoolcron.E034"]
    assert error.msg == (
        "Queue 'far' is remote, but SPOOLCRON['REMOTE_KEYS'] is empty: remote jobs are signed, "
        "so none could be sent."
    )


# --- signed requests ----------------------------------------------------------------------------


def signed(payload: Payload, key: bytes = KEY, expires: float = NOW + 300) -> dict[bytes, bytes]:
    return request_args(payload, payload.to_body(), key=key, expires=expires)


PAYLOAD = Payload("tests.testapp.tasks.remote_record", "job1", NOW, args=["a"])


def test_a_signed_request_round_trips() -> None:
    args = signed(PAYLOAD)
    assert args[b"at"] == str(int(NOW) - 1).encode()  # uWSGI's `at`, a second ahead
    assert remote_payload(args, keys=[KEY], now=NOW, name="f") == PAYLOAD


def test_a_rotated_key_still_verifies() -> None:
    assert remote_payload(signed(PAYLOAD, OLD_KEY), keys=[KEY, OLD_KEY], now=NOW, name="f")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a.pop(SIGNATURE_ARG),
            "Spool file 'f' is a remote request without a signature (no body, no signed "
            "payload): refused, not run.",
        ),
        (
            lambda a: a.__setitem__(PAYLOAD_ARG, a[PAYLOAD_ARG].replace(b'"a"', b'"b"')),
            "Spool file 'f' is a remote request whose signature no key of "
            "SPOOLCRON['REMOTE_KEYS'] verifies (forged, altered, or signed with another key): "
            "refused, not run.",
        ),
        (
            lambda a: a.__setitem__(b"expires", repr(NOW - 5.0).encode()),
            "Spool file 'f' is a remote request whose signature no key of "
            "SPOOLCRON['REMOTE_KEYS'] verifies (forged, altered, or signed with another key): "
            "refused, not run.",
        ),
    ],
    ids=["unsigned", "altered", "expiry-moved"],
)
def test_a_bad_request_is_refused_with_its_reason(change: Any, message: str) -> None:
    args = signed(PAYLOAD)
    change(args)
    with pytest.raises(PayloadError) as caught:
        remote_payload(args, keys=[KEY], now=NOW, name="f")
    assert str(caught.value) == message


def test_a_replayed_request_is_refused_after_its_expiry() -> None:
    args = signed(PAYLOAD, expires=NOW + 300)
    with pytest.raises(PayloadError) as caught:
        remote_payload(args, keys=[KEY], now=NOW + 310, name="f")
    assert str(caught.value) == (
        "Spool file 'f' is a remote request that expired 10.0 s ago (sent too late, or "
        "replayed): refused, not run."
    )


def arrived(
    tmp_path: Path, args: dict[bytes, bytes], name: str = "uwsgi_spoolfile_on_host_1_2_3_4_5"
) -> codec.SpoolFile:
    """A spool file as uWSGI writes a request that arrived: its pairs, no body."""
    path = tmp_path / name
    path.write_bytes(codec.encode(args))
    return files.read(path)


def test_admission_refuses_a_remote_request_for_a_task_that_did_not_opt_in(
    queues: dict[str, Path], tmp_path: Path
) -> None:
    payload = Payload("tests.testapp.tasks.record", "job2", time.time(), args=["x"])
    file = arrived(tmp_path, signed(payload, expires=time.time() + 60))
    with pytest.raises(PayloadError) as caught:
        admit(file, now=time.time())
    assert str(caught.value) == (
        f"Spool file {str(file.path)!r} is a remote request for task "
        "'tests.testapp.tasks.record', which does not accept remote jobs (declare it with "
        "@spoolcron.task(remote=True)): refused, not run."
    )


def test_a_request_sent_again_within_its_validity_is_refused_but_the_same_file_runs_again(
    queues: dict[str, Path], tmp_path: Path
) -> None:
    payload = Payload("tests.testapp.tasks.remote_record", "job-r", time.time(), args=["x"])
    args = signed(payload, expires=time.time() + 60)
    first = arrived(tmp_path, args)
    assert admit(first, now=time.time()) == payload
    # The same file again (its spooler died mid-task and uWSGI runs it anew): admitted.
    assert admit(first, now=time.time()) == payload
    copy = arrived(tmp_path, args, name="uwsgi_spoolfile_on_host_9_9_9_9_9")
    with pytest.raises(PayloadError) as caught:
        admit(copy, now=time.time())
    assert str(caught.value) == (
        f"Spool file {str(copy.path)!r} is a remote request for job 'job-r', which this host "
        f"received before in {first.path.name!r} (sent again, or replayed): refused, not run."
    )


def test_the_notes_of_received_requests_go_once_their_requests_expired(
    queues: dict[str, Path], tmp_path: Path
) -> None:
    for job, expires in (("old", NOW - 1), ("current", NOW + 60)):
        received.first_receipt(tmp_path / f"uwsgi_spoolfile_{job}", job, expires=expires)
    assert received.forget_expired(tmp_path, now=NOW) == 1
    assert len(list((tmp_path / received.RECEIVED_DIR).iterdir())) == 1
    # Gone with its note, the old job's request is refused all the same: it expired.


def test_a_note_that_cannot_be_written_lets_the_job_run_and_says_so(
    queues: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / received.RECEIVED_DIR).write_text("a file where the directory should be")
    payload = Payload("tests.testapp.tasks.remote_record", "job-n", time.time(), args=["x"])
    file = arrived(tmp_path, signed(payload, expires=time.time() + 60))
    assert admit(file, now=time.time()) == payload  # at least once
    assert "could not note the remote job job=job-n" in caplog.text


def nginx_args(**params: str) -> dict[bytes, bytes]:
    return {key.encode(): value.encode() for key, value in params.items()}


def test_admission_maps_nginx_parameters_to_keyword_arguments(
    queues: dict[str, Path], tmp_path: Path
) -> None:
    file = arrived(
        tmp_path,
        nginx_args(
            spoolcron_task="tests.testapp.tasks.mass_mail",
            spoolcron_token="t" * 20,
            group="customers",
            REMOTE_ADDR="127.0.0.1",  # not mapped: never an argument
        ),
    )
    payload = admit(file, now=time.time())
    assert (payload.task, payload.args, payload.kwargs) == (
        "tests.testapp.tasks.mass_mail",
        [],
        {"group": "customers"},
    )
    assert admit(file, now=time.time()).job_id == payload.job_id  # a retry keeps its id


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {"spoolcron_task": "tests.testapp.tasks.mass_mail", "group": "all"},
            "is a request from nginx without a valid spoolcron_token: refused, not run.",
        ),
        (
            {"spoolcron_task": "tests.testapp.tasks.mass_mail", "spoolcron_token": "x" * 20},
            "is a request from nginx without a valid spoolcron_token: refused, not run.",
        ),
        (
            {"spoolcron_task": "tests.testapp.tasks.record", "spoolcron_token": "t" * 20},
            "from nginx names the task 'tests.testapp.tasks.record', which does not accept "
            "requests from nginx (declare it with @spoolcron.task(nginx={...})): refused, not run.",
        ),
        (
            {"spoolcron_task": "os.system", "spoolcron_token": "t" * 20},
            "from nginx names the task 'os.system', which is not registered: refused, not run.",
        ),
    ],
    ids=["no-token", "wrong-token", "task-not-opted-in", "unknown-task"],
)
def test_admission_refuses_a_bad_nginx_request(
    queues: dict[str, Path], tmp_path: Path, params: dict[str, str], reason: str
) -> None:
    file = arrived(tmp_path, nginx_args(**params))
    assert file.is_ours
    with pytest.raises(PayloadError) as caught:
        admit(file, now=time.time())
    assert str(caught.value) == f"Spool file {str(file.path)!r} {reason}"
    assert NGINX_TASK_ARG in file.args


# --- the uwsgi-protocol client --------------------------------------------------------------------


@pytest.fixture
def answering() -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """A loopback server that reads one packet per connection and answers what the test
    queued (uWSGI's answers; the real server is in the integration tests)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # accept() would not notice the close
    answers: list[bytes] = []
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                header = conn.recv(4)
                size = int.from_bytes(header[1:3], "little")
                data = b""
                while len(data) < size:
                    data += conn.recv(size - len(data))
                received.append(header + data)
                conn.sendall(answers.pop(0) if answers else b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}", answers, received
    done.set()
    thread.join(5)
    server.close()


def test_send_delivers_a_modifier1_17_packet(answering: Any) -> None:
    address, answers, received = answering
    answers.append(bytes([255, 0, 0, 1]))
    remote.send(address, {b"a": b"1"}, timeout=2, job="j")
    assert received == [bytes([17, 6, 0, 0]) + b"\x01\x00a\x01\x001"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            bytes([255, 0, 0, 0]),
            "it refused the job (no spooler running there, or no spooler directory of that "
            "name: see the queue's 'spooler')",
        ),
        (
            b"",
            "it closed the connection without answering (is it a uWSGI instance with the "
            "spooler plugin, reached on a uwsgi socket rather than HTTP?)",
        ),
    ],
    ids=["refused", "no-answer"],
)
def test_send_raises_when_the_job_was_not_taken(answering: Any, answer: bytes, reason: str) -> None:
    address, answers, _ = answering
    answers.append(answer)
    with pytest.raises(RemoteSpoolError) as caught:
        remote.send(address, {b"a": b"1"}, timeout=2, job="j")
    assert (
        str(caught.value) == f"Cannot enqueue job 'j' on the remote spooler {address!r}: {reason}."
    )
    assert caught.value.address == address


def test_schedule_to_an_unreachable_queue_raises_naming_it(queues: dict[str, Path]) -> None:
    with pytest.raises(RemoteSpoolError) as caught:
        spoolcron.schedule(tasks.remote_record, ["x"], queue="far")
    assert str(caught.value).startswith("Cannot enqueue job ")
    assert "on the remote spooler '127.0.0.1:9': Connection refused." in str(caught.value)


def test_a_request_too_large_for_the_protocol_is_refused_at_enqueue(
    queues: dict[str, Path],
) -> None:
    with pytest.raises(InvalidArguments) as caught:
        spoolcron.schedule(tasks.remote_record, ["x" * 70_000], queue="far")
    message = str(caught.value)
    assert message.startswith(
        "Cannot schedule task 'tests.testapp.tasks.remote_record' on the remote queue 'far': "
        "its request takes "
    )
    assert message.endswith(
        "bytes, and a uwsgi spool request carries at most 65535 (no body); pass a reference "
        "(a database id) instead."
    )
