"""The readings words give polyphonic characters, as kept in customers/pinyin_words.py, are
what pypinyin's phrase dictionary gives them: every character pypinyin reads several ways."""

from pypinyin.pinyin_dict import pinyin_dict

from customer_service.customers import pinyin


def test_the_kept_readings_are_the_phrase_dictionary_s_for_every_polyphonic_character() -> None:
    computed = pinyin.readings_in_phrases()
    kept = pinyin._readings_in_words()
    polyphonic = {chr(code) for code, readings in pinyin_dict.items() if "," in readings}
    assert {c: r for c, r in computed.items() if c in polyphonic} == kept
    assert kept["乐"] == {"yue", "le", "lao"}
    assert kept["长"] == {"zhang", "chang"}


def test_a_character_with_one_reading_needs_no_kept_reading() -> None:
    # _heteronyms keeps the first (default) reading whatever words say: one reading, no table.
    single = [chr(c) for c, r in pinyin_dict.items() if "," not in r][:3000]
    for char in single:
        assert len(pinyin._heteronyms(char)) <= 1, char
