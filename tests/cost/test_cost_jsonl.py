"""Block reading: every line is handed out exactly once, whatever the buffer size."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from engine.cost import jsonl


def _read(path: Path, offset: int, max_line: int):
    lines: list[bytes] = []
    longs: list[bytes] = []

    def on_block(buf, start, end):
        assert buf[end - 1:end] == b"\n"
        lines.extend(bytes(buf[start:end]).split(b"\n")[:-1])

    end, tail, sig = jsonl.read_blocks(str(path), offset, max_line, on_block, longs.append)
    return lines, longs, end, tail, sig


@pytest.mark.parametrize("chunk", [64, 100, 1 << 20, "mapped"])
@pytest.mark.parametrize("seed", range(6))
def test_read_blocks_hands_out_each_line_once(tmp_path: Path, monkeypatch, chunk: int | str, seed: int) -> None:
    if chunk == "mapped":
        monkeypatch.setattr(jsonl, "MMAP_MIN_BYTES", 1)
        monkeypatch.setattr(jsonl, "MMAP_MIN_AGE", 0.0)
    else:
        monkeypatch.setattr(jsonl, "MMAP_MIN_BYTES", 1 << 62)
        monkeypatch.setattr(jsonl, "CHUNK", chunk)
        monkeypatch.setattr(jsonl, "_buf", None)
    rnd = random.Random(seed)
    max_line = 16
    raw = [bytes(rnd.choice(b"abc{}\":") for _ in range(rnd.choice([0, 1, 5, 15, 16, 17, 40, 130])))
           for _ in range(60)]
    terminated = rnd.random() < 0.5
    data = b"\n".join(raw) + (b"\n" if terminated else b"")
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    offset = 0 if seed % 2 == 0 else len(raw[0]) + 1
    lines, longs, end, tail, sig = _read(path, offset, max_line)

    body = data[offset:]
    complete = body.split(b"\n")
    last = complete.pop()          # b"" when terminated
    # short lines arrive whole and in order; a long line either arrives whole in a block or is
    # reported once by its first max_line bytes
    i = j = 0
    for ln in complete:
        if len(ln) <= max_line or (i < len(lines) and lines[i] == ln):
            assert lines[i] == ln
            i += 1
        else:
            assert longs[j] == ln[:max_line]
            j += 1
    assert i == len(lines)
    if len(last) > max_line:  # an unterminated over-long tail is reported too
        assert longs[j] == last[:max_line]
        j += 1
    assert j == len(longs)
    if not last:
        assert end == len(data) and tail is None
    elif len(last) <= max_line:
        assert end == len(data) - len(last) and tail == last
    else:
        assert end == len(data) - len(last) and tail == b""
    if sig is not None:
        assert tail is None
        assert sig == jsonl.file_signature(str(path), end)
    elif chunk == "mapped" or (chunk == 1 << 20 and offset == 0):
        assert tail is not None  # the signature comes for free unless there is a tail


def test_buffer_signature_matches_file_signature(tmp_path: Path) -> None:
    rnd = random.Random(3)
    data = bytes(rnd.getrandbits(8) for _ in range(120_000))
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    for offset in (0, 1, 100, 2 * jsonl.SIG_EDGE + jsonl.SIG_SAMPLES * jsonl.SIG_SAMPLE,
                   2 * jsonl.SIG_EDGE + jsonl.SIG_SAMPLES * jsonl.SIG_SAMPLE + 1, 77_777, len(data)):
        assert jsonl.buffer_signature(memoryview(data), offset) == jsonl.file_signature(str(path), offset)


def test_day_keyer_hour_memo_agrees_with_full_parse() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    for zone in ("UTC", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "America/Sao_Paulo"):
        tz = ZoneInfo(zone)
        keyer = jsonl.DayKeyer(tz)
        rnd = random.Random(zone)
        for _ in range(3000):
            ts = (f"20{rnd.randint(18, 27)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                  f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
                  f"{rnd.choice(['', '.5', '.123', '.123456789'])}{rnd.choice('Zz')}")
            want = datetime.fromisoformat(ts[:-1] + "+00:00").astimezone(tz).date().isoformat()
            assert keyer.day(ts) == want, ts
        for bad in ("2026-04-20T15:30:61Z", "2026-04-20T24:00:00Z", "2026-02-30T10:00:00Z", "2026-04-20T15:3x:00Z"):
            assert keyer.day(bad) is None, bad
