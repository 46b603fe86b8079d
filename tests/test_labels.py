"""The label maps, symbol by symbol (AAMI EC57, Jun et al. 2018, binary)."""
import numpy as np
import pytest

from pipelines.signal import labels

AAMI_EXPECTED = {
    # the de Chazal et al. 2004 / EC57 core table
    "N": "N", "L": "N", "R": "N", "e": "N", "j": "N",
    "A": "S", "a": "S", "J": "S", "S": "S",
    "V": "V", "E": "V",
    "F": "F",
    "/": "Q", "f": "Q", "Q": "Q",
    # EC57 symbols MIT-BIH does not use
    "B": "N", "n": "S", "r": "V", "?": "Q",
}
JUN8_EXPECTED = {"N": "NOR", "V": "PVC", "/": "PAB", "R": "RBB", "L": "LBB", "A": "APC", "!": "VFW", "E": "VEB"}
NON_BEATS = ["+", "~", "|", "x", '"', "[", "]", "!", "p", "t", "u", "`", "'", "^", "=", "@", "s", "T", "*", "D"]


@pytest.mark.parametrize("symbol, expected", sorted(AAMI_EXPECTED.items()))
def test_aami_symbol(symbol, expected):
    assert labels.aami_class(symbol) == expected
    assert labels.binary_class(symbol) == ("normal" if expected == "N" else "abnormal")
    assert labels.is_beat(symbol)


@pytest.mark.parametrize("symbol, expected", sorted(JUN8_EXPECTED.items()))
def test_jun8_symbol(symbol, expected):
    assert labels.jun8_class(symbol) == expected


@pytest.mark.parametrize("symbol", NON_BEATS)
def test_non_beats_have_no_aami_class(symbol):
    assert labels.aami_class(symbol) is None
    assert labels.binary_class(symbol) is None
    assert not labels.is_beat(symbol)


def test_beat_symbols_are_exactly_the_aami_table():
    assert set(labels.BEAT_SYMBOLS) == set(AAMI_EXPECTED)


@pytest.mark.parametrize("symbol", sorted(set(labels.BEAT_SYMBOLS) - set(JUN8_EXPECTED)))
def test_jun8_has_no_class_for_other_beats(symbol):
    assert labels.jun8_class(symbol) is None


def test_vectorised_maps_agree_with_scalar_ones():
    symbols = list(labels.BEAT_SYMBOLS) + ["!", "+", None]
    for scheme, scalar in [("aami", labels.aami_class), ("jun8", labels.jun8_class), ("binary", labels.binary_class)]:
        got = labels.map_symbols(symbols, scheme).tolist()
        assert got == [None if s is None else scalar(s) for s in symbols]
        idx = labels.class_indices(symbols, scheme)
        names = labels.class_names(scheme)
        assert idx.dtype == np.int64
        assert [names[i] if i >= 0 else None for i in idx] == got


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown label scheme 'aaami'"):
        labels.class_names("aaami")


def test_splits_are_disjoint_and_cover_the_non_paced_records():
    assert len(labels.DS1) == len(labels.DS2) == 22
    assert not set(labels.DS1) & set(labels.DS2)
    assert not (set(labels.DS1) | set(labels.DS2)) & set(labels.PACED_RECORDS)
