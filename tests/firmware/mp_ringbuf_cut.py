# smartbins firmware tests: cut a slot write at every byte offset, recover, check (micropython)
# Prints one JSON line per offset: what recovery found. Run with MICROPYPATH=firmware/.
import json
import os
import sys

from hw_fake import CutFlash
from ringbuf import SLOT_SIZE, FileFlash, PowerCut, RingBuffer, pack

work = sys.argv[1]
SLOTS = 8


def fresh():
    for name in ("buf.bin", "state.json"):
        try:
            os.remove(work + "/" + name)
        except OSError:
            pass


def rec(i):
    return {
        "boot": 1,
        "ts": 1764000000000 + i * 1000,
        "mm": 800 + i,
        "fill": 25.0,
        "interval": 3600,
        "cal": 1,
        "fw": "1.0.0",
        "flags": 0,
        "rtc": i,
    }


# Ten readings into eight slots: the ring has wrapped, so the cut write overwrites an older
# record, and two of the earlier readings were acknowledged.
# The cut falls in the record's body write (the one-byte mark writes around it are atomic);
# cut = -1 is the control run without a cut.
length = len(pack(dict(rec(10), seq=10, dropped=0))) - 1
for cut in list(range(length + 1)) + [-1]:
    fresh()
    rb = RingBuffer(FileFlash(work + "/buf.bin", SLOTS * SLOT_SIZE), SLOTS, work + "/state.json")
    for i in range(10):
        rb.append(rec(i))
    rb.handle([(2, 3)])
    rb.save_state()
    if cut >= 0:
        rb.flash = CutFlash(work + "/buf.bin", SLOTS * SLOT_SIZE, cut)
    try:
        rb.append(rec(10))
        outcome = "no cut"
    except PowerCut:
        outcome = "cut"
    after = RingBuffer(FileFlash(work + "/buf.bin", SLOTS * SLOT_SIZE), SLOTS, work + "/state.json")
    pending = after.pending()
    readable = {s: after.read(s) for s in pending}
    seq = after.append(rec(11))
    print(
        json.dumps(
            {
                "cut": cut,
                "length": length,
                "outcome": outcome,
                "pending": pending,
                "torn": after.torn,
                "next": seq,
                "mm": [readable[s]["mm"] for s in sorted(readable)],
                "dropped": after.state["dropped"],
            }
        )
    )
