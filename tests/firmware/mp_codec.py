# smartbins firmware tests: run the firmware's encoder/decoder under `micropython` (MICROPYPATH
# = firmware/), one JSON request per stdin line, one JSON answer per stdout line.
import json
import sys

import encode

while True:
    line = sys.stdin.readline()
    if not line:
        break
    req = json.loads(line)
    op = req["op"]
    try:
        if op == "reading":
            topic, payload = encode.reading(req["dev"], req["rec"])
        elif op == "batch":
            topic, payload = encode.batch(req["dev"], req["recs"])
        elif op == "status":
            topic, payload = encode.status(req["dev"], req["fields"])
        else:
            kind, fields = encode.decode(req["dev"], req["topic"], req["payload"].encode())
            print(json.dumps({"kind": kind, "fields": fields}))
            continue
        print(json.dumps({"topic": topic, "payload": payload.decode()}))
    except ValueError as e:
        print(json.dumps({"error": str(e)}))
