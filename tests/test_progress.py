"""The resumable progress log shared by ablations and synthetic-question runs."""

from __future__ import annotations

import json

from ragkit.progress import ProgressLog


def test_records_survive_a_reopen_and_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "job.jsonl"
    log = ProgressLog(path, {"settings": {"seed": 0}})
    assert log.read() == [] and log.found is None
    log.add({"unit": 1})
    log.add({"unit": 2})
    log.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"unit": 3, "val')  # killed mid-write
    again = ProgressLog(path, {"settings": {"seed": 0}})
    assert again.read() == [{"unit": 1}, {"unit": 2}]
    again.add({"unit": 3})
    again.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1]) == {"unit": 3}  # on a line of its own after the torn one
    assert [r["unit"] for r in ProgressLog(path, {"settings": {"seed": 0}}).read()] == [1, 2, 3]


def test_another_jobs_log_is_reported_and_replaced_only_when_written_to(tmp_path):
    path = tmp_path / "job.jsonl"
    first = ProgressLog(path, {"fingerprint": "a"})
    first.add({"unit": 1})
    first.close()
    other = ProgressLog(path, {"fingerprint": "b"})
    assert other.read() == [] and other.found == {"fingerprint": "a"}
    assert ProgressLog(path, {"fingerprint": "a"}).read() == [{"unit": 1}]  # reading changed nothing
    other.open()
    other.close()
    assert path.read_text(encoding="utf-8") == json.dumps({"fingerprint": "b"}) + "\n"


def test_a_garbled_header_is_no_log(tmp_path):
    path = tmp_path / "job.jsonl"
    path.write_text("not json\n{\"unit\": 1}\n", encoding="utf-8")
    log = ProgressLog(path, {"fingerprint": "a"})
    assert log.read() == [] and log.found is None


def test_remove_closes_and_deletes(tmp_path):
    path = tmp_path / "job.jsonl"
    log = ProgressLog(path, {"fingerprint": "a"})
    log.add({"unit": 1})
    log.remove()
    assert not path.exists()
    log.remove()  # nothing left to remove: no error
