"""Which OSErrors the user fixes (a full disk, a read-only folder), and a one-line message for them.

Only these errno values are turned into user errors; any other OSError is a bug or something
unexpected and keeps its traceback.
"""

from __future__ import annotations

import errno

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
USER_FIXABLE = NO_SPACE | NOT_WRITABLE


def is_user_fixable(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in USER_FIXABLE


def describe(exc: OSError, where: object, elsewhere: str) -> str:
    """``cannot write WHERE (No space left on device); free space there or ELSEWHERE.``"""
    name = exc.filename or where
    reason = exc.strerror or type(exc).__name__
    if exc.errno in NO_SPACE:
        fix = f"free disk space there or {elsewhere}"
    else:
        fix = f"make it writable or {elsewhere}"
    return f"cannot write {name} ({reason}); {fix}."
