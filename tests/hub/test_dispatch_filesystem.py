"""The embedded broker's messages appear whole: a worker polling the queue folder never sees a half-written file
(kombu's own filesystem transport creates the file first and writes it after, and a worker that reads it in between
stops with "Unrecoverable error: JSONDecodeError")."""
import os

from kombu import Connection

from hub import dispatch
from hub.dispatch import celery_config


def round_trip(folder, payload: dict) -> None:
    """Put one message on the embedded broker in `folder`, get it back within 5 s and acknowledge it."""
    config = celery_config(f"filesystem://{folder}")
    with Connection(config["broker_url"], transport_options=config["broker_transport_options"]) as conn:
        queue = conn.SimpleQueue("cpu")
        queue.put(payload)
        message = queue.get(timeout=5)
        assert message.payload == payload
        message.ack()
        queue.close()


def test_a_message_is_written_aside_and_renamed_into_the_queue(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        assert os.path.getsize(src) > 0  # complete before it gets a name the worker looks for
        renames.append((os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(dispatch.os, "replace", replace)
    round_trip(tmp_path, {"job": "abc"})
    ((src, dst),) = renames
    assert src.startswith(".partial-") and dst.endswith(".cpu.msg") and src.partition(".")[2] != "cpu.msg"
    assert not os.listdir(tmp_path / "queue")


def test_a_message_is_delivered_whatever_the_process_temp_dir_is(tmp_path, monkeypatch):
    """kombu's transport moves a claimed message into tempfile.gettempdir(); when that move fails (a cached temp dir
    that no longer exists) it skips the message on every poll and the job waits forever. Claims stay in our folders."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone" / "away"))
    round_trip(tmp_path / "broker", {"job": "def"})
    assert not os.listdir(tmp_path / "broker" / "queue")
    assert not os.listdir(tmp_path / "broker" / "processed")


def test_a_second_broker_folder_in_the_same_process_gets_its_messages(tmp_path):
    """kombu remembers bindings per process and wrote the second folder's binding nowhere: its messages vanished."""
    for name in ("first", "second"):
        round_trip(tmp_path / name, {"job": name})
