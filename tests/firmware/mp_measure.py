# smartbins firmware tests: measure.py's pure functions under micropython (stdin: JSON requests)
import json
import sys

import measure

for line in sys.stdin:
    req = json.loads(line)
    f = getattr(measure, req["fn"])
    out = f(*req["args"])
    print(json.dumps(list(out) if isinstance(out, tuple) else out))
