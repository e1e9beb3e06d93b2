from scrm.memo import MISSING, LocalMemo


def test_memo_answers_until_its_time_is_up_or_the_key_is_forgotten():
    memo = LocalMemo(seconds=60)
    memo.put("key", "value")
    assert memo.get("key") == "value"

    memo.forget("key")

    assert memo.get("key") is MISSING


def test_memo_expires_its_entries():
    memo = LocalMemo(seconds=0)
    memo.put("key", "value")
    assert memo.get("key") is MISSING


def test_memo_keeps_a_bounded_number_of_entries():
    memo = LocalMemo(seconds=60, entries=2)
    for key in ("a", "b", "c"):
        memo.put(key, key)
    assert [memo.get(key) for key in ("a", "b", "c")] == [MISSING, MISSING, "c"]
