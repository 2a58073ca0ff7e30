"""The shared LRU memo: bounded, least recently *used* (read or written) entry goes first, size 0 keeps nothing."""

from __future__ import annotations

import threading

from ragkit.lru import LRU


def test_drops_the_least_recently_used_entry():
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a read makes "a" the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_rewriting_a_key_refreshes_it_without_growing():
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert cache.get("a") == 10 and cache.get("b") is None and len(cache) == 2


def test_size_zero_keeps_nothing():
    cache: LRU[str, int] = LRU(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0


def test_concurrent_writers_never_exceed_the_bound():
    cache: LRU[int, int] = LRU(16)

    def write(start: int) -> None:
        for i in range(start, start + 2000):
            cache.put(i, i)
            cache.get(i - 3)

    threads = [threading.Thread(target=write, args=(n * 10_000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 16
