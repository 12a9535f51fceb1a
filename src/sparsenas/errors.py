"""The one exception type a user sees.

Every bad input (unknown name, bad sparsity, missing or corrupt data file, spec file with an unknown
key, run directory holding another spec) raises `SparsenasError` with a one-line message that names
the problem and the fix. The CLI prints it as ``error: <message>`` and exits with status 2; nothing
else is shown to the user, and nothing already stored is touched.
"""

from __future__ import annotations


class SparsenasError(Exception):
    """A user-facing error: one line naming the problem and the fix.

    >>> raise SparsenasError("unknown dataset 'mnst'; known: digits, fashion-mnist, mnist5k")
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: unknown dataset 'mnst'; known: digits, fashion-mnist, mnist5k
    """
