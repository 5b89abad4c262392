"""AAMI EC57 facts about MIT-BIH: classes, paced records and the de Chazal (2004) split."""

from types import MappingProxyType

#: Class order used everywhere: label ``i`` is ``AAMI_CLASSES[i]``.
AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: MIT-BIH beat symbol -> AAMI class. Symbols not listed (rhythm, noise, '!' flutter
#: waves, ...) are not beats for AAMI EC57 and are ignored.
SYMBOL_TO_AAMI = MappingProxyType(
    {
        **dict.fromkeys("NLRej", "N"),
        **dict.fromkeys("AaJS", "S"),
        **dict.fromkeys("VE", "V"),
        "F": "F",
        **dict.fromkeys("/fQ", "Q"),
    }
)

#: The 48 records of MIT-BIH Arrhythmia Database 1.0.0.
MITDB_RECORDS: tuple[str, ...] = (
    "100", "101", "102", "103", "104", "105", "106", "107", "108", "109",
    "111", "112", "113", "114", "115", "116", "117", "118", "119", "121",
    "122", "123", "124", "200", "201", "202", "203", "205", "207", "208",
    "209", "210", "212", "213", "214", "215", "217", "219", "220", "221",
    "222", "223", "228", "230", "231", "232", "233", "234",
)  # fmt: skip

#: Records with a pacemaker; AAMI EC57 excludes them.
PACED_RECORDS: frozenset[str] = frozenset({"102", "104", "107", "217"})

#: de Chazal et al. 2004 inter-patient split.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)  # fmt: skip
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)  # fmt: skip

#: Sampling rate every preset works at; other databases are resampled to it.
MITDB_FS = 360

#: Published AAMI beat counts for DS1 and DS2 (de Chazal 2004), the data layer's acceptance test.
PUBLISHED_COUNTS = MappingProxyType(
    {
        "DS1": MappingProxyType({"N": 45866, "S": 944, "V": 3788, "F": 415, "Q": 8}),
        "DS2": MappingProxyType({"N": 44259, "S": 1837, "V": 3221, "F": 388, "Q": 7}),
    }
)


def aami_label(symbol: str) -> int | None:
    """Label index of a beat symbol, or ``None`` when AAMI EC57 does not count it as a beat."""
    cls = SYMBOL_TO_AAMI.get(symbol)
    return None if cls is None else AAMI_CLASSES.index(cls)
