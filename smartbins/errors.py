"""The base of errors meant for a person at a terminal or in a log, not for a traceback."""


class SmartbinsError(Exception):
    """Printed by the CLI as `smartbins COMMAND: message` (exit status 1). The message says what
    went wrong and what to do next."""
