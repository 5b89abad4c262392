"""User-facing errors.

Anything the user can fix (a missing file, a bad option, a corrupt download) raises
:class:`EcgEdgeError`; the CLI prints its one-line message and exits non-zero without a
traceback. Bugs stay ordinary exceptions so they keep their traceback.
"""


class EcgEdgeError(Exception):
    """An error caused by input the user controls; the message says what to do."""


class DataError(EcgEdgeError):
    """A data directory, record or checksum problem."""
