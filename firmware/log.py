# smartbins firmware: level-gated logging (as aioble's core.py does it)
# Apache-2.0; part of smartbins. Never pass a secret to these functions.

import sys

log_level = 1  # 0 silent, 1 errors, 2 warnings, 3 info


def log_error(*args) -> None:
    if log_level > 0:
        print("[sb:E]", *args, file=sys.stderr)


def log_warn(*args) -> None:
    if log_level > 1:
        print("[sb:W]", *args, file=sys.stderr)


def log_info(*args) -> None:
    if log_level > 2:
        print("[sb:I]", *args, file=sys.stderr)
