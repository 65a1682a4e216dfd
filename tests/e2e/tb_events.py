#!/usr/bin/python3
"""Reads a run's TensorBoard event files with an independent reader and checks them against its
metrics.jsonl: TFRecord framing and masked CRC32C (computed here, bit by bit), Event protobufs
parsed with python3-protobuf from descriptors built here from TensorFlow's event.proto and
summary.proto field numbers, the file_version record first, and one event per metrics line with
its step, wall time, tags and values (float32).

usage: tb_events.py RUN_DIR   (exit status 0 when every check holds; prints a summary)"""
import glob, json, math, os, struct, sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4


def event_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="tb_check.proto", package="tensorflow", syntax="proto3")
    summary = fdp.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".tensorflow.Summary.Value")
    event = fdp.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                    type_name=".tensorflow.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tensorflow.Event"))


def records(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        assert at + 12 <= len(data), f"{path}: torn record header at byte {at}"
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert crc == masked(header), f"{path}: length CRC at byte {at}"
        body = data[at + 12:at + 12 + length]
        (crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert len(body) == length and crc == masked(body), f"{path}: data CRC of the record at byte {at}"
        yield body
        at += 16 + length


def tag(key):
    if key.startswith("dev_"):
        return "dev/" + key[4:]
    return ("schedule/" if key in ("alpha", "beta", "temperature") else "train/") + key


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def check(run_dir):
    files = sorted(glob.glob(os.path.join(run_dir, "tb", "events.out.tfevents.*")))
    assert len(files) == 1, f"expected one event file in {run_dir}/tb, found {files}"
    Event = event_class()
    events = [Event.FromString(r) for r in records(files[0])]
    assert events and events[0].file_version == "brain.Event:2", "the first record is not the file version"
    lines = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    assert len(events) - 1 == len(lines), f"{len(events) - 1} events for {len(lines)} metrics lines"
    tags = set()
    for e, line in zip(events[1:], lines):
        assert e.step == line["step"], (e.step, line["step"])
        assert abs(e.wall_time - line["wall_time"]) < 1e-6, (e.wall_time, line["wall_time"])
        want = {tag(k): f32(v) for k, v in line.items()
                if k not in ("step", "epoch", "wall_time") and isinstance(v, (int, float))
                and not isinstance(v, bool) and math.isfinite(v)}
        got = {v.tag: v.simple_value for v in e.summary.value}
        assert got == want, f"step {e.step}: events {got} vs metrics {want}"
        tags |= set(got)
    return files[0], len(events), sorted(tags)


if __name__ == "__main__":
    path, n, tags = check(sys.argv[1])
    print(f"{os.path.basename(path)}: {n} records, CRCs and framing ok, every metrics line as an event; tags: {' '.join(tags)}")
