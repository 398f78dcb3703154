"""What lmbook's commands (``python -m lmcore.train``, ``python -m lmcore.detect``) share: a user
error is one line on stderr and exit code 2, another lmbook error one line and exit code 1."""
from __future__ import annotations

import argparse
import sys

EXIT_USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and exit code 2."""

    def error(self, message):
        user_error(self.prog, message)
        raise SystemExit(EXIT_USER_ERROR)


def user_error(prog: str, message) -> int:
    """Print ``prog: error: message`` on stderr; returns the exit code of a user error."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def lmbook_error(prog: str, exc: Exception) -> int:
    """Print ``prog: <ErrorType>: message`` on stderr (what went wrong that the user did not type);
    returns exit code 1."""
    print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1
