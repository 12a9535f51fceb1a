"""The one exception type a user sees, and the helpers that keep its message one readable line.

Every bad input (unknown name, bad sparsity, missing or corrupt data file, spec file with an unknown
key, run directory holding another spec) raises `SparsenasError` with a one-line message that names
the problem and the fix. The CLI prints it as ``error: <message>`` and exits with status 2; nothing
else is shown to the user, and nothing already stored is touched.

Messages quote user values (a dataset name, a spec file's value), and those may hold newlines or be
megabytes long (a YAML alias bomb), so the exception itself folds its message onto one line and cuts
it to `MAX_MESSAGE` characters: no caller can break the one-line promise by quoting a value raw.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE = 600  # characters of a whole message: about five terminal lines
MAX_QUOTE = 80  # characters of one quoted value inside a message

# control characters shown as escapes, so "a\nb" reads as a\nb on one line
_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\x1b"): "\\x1b", ord("\x00"): "\\x00"}


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` with control characters escaped, cut in the middle to at most `limit` characters.

    >>> one_line("unknown dataset 'a\\nb'")
    "unknown dataset 'a\\\\nb'"
    >>> len(one_line("x" * 10_000, limit=50))
    50
    """
    flat = "".join(_ESCAPES.get(ord(c), c if c.isprintable() or c == " " else f"\\x{ord(c):02x}") for c in text[: 4 * limit])
    if len(text) > 4 * limit:
        flat += "…"
    if len(flat) <= limit:
        return flat
    cut = " … "
    head = (limit - len(cut)) * 2 // 3
    return flat[:head] + cut + flat[len(flat) - (limit - len(cut) - head) :]


def first_line(error: BaseException, limit: int = 200) -> str:
    """An exception quoted in a message: its first non-empty line (torch.fx and torch append
    context and hints below it), cut to `limit` characters; its type's name if it has no text.

    >>> first_line(RuntimeError("shape mismatch\\n  While executing %x"))
    'shape mismatch'
    >>> first_line(KeyError())
    'KeyError'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """A value as an error message quotes it: its repr on one line, cut to `limit` characters.

    >>> quote("ten")
    "'ten'"
    >>> quote(list(range(1000)))
    '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...]'
    >>> len(quote("x" * 10_000))
    80
    """
    # repr of a huge nested structure (YAML aliases) costs memory and time; reprlib bounds it
    import reprlib

    r = reprlib.Repr()  # attributes, not keywords: Python 3.11's Repr takes none
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxlong = 3, 12, 12, 8, 40
    r.maxstring = r.maxother = limit
    try:
        text = r.repr(value)
    except ValueError:  # an int past Python's 4,300-digit str() limit
        text = f"<an integer of {value.bit_length():,} bits>" if isinstance(value, int) else f"<a {type(value).__name__}>"
    return one_line(text, limit)


class SparsenasError(Exception):
    """A user-facing error: one line naming the problem and the fix.

    >>> raise SparsenasError("unknown dataset 'mnst'; known: digits, fashion-mnist, mnist5k")
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: unknown dataset 'mnst'; known: digits, fashion-mnist, mnist5k
    >>> str(SparsenasError("unknown dataset 'a\\nb'"))
    "unknown dataset 'a\\\\nb'"
    """

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)
