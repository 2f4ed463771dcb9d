"""The workers' model caches (workers.ml.loading): a small LRU per kind, its size set by environment."""
import pytest

from workers.ml.loading import ModelCache, cache_size


def test_it_keeps_the_most_recently_used_models_and_drops_the_oldest():
    cache, loads = ModelCache(2), []

    def loader(name):
        return lambda: loads.append(name) or f"model {name}"

    assert cache.get("a", loader("a")) == "model a"
    cache.get("b", loader("b"))
    assert cache.get("a", loader("a")) == "model a"  # a hit: "a" is now the most recent
    cache.get("c", loader("c"))  # drops "b", the least recently used
    cache.get("a", loader("a"))
    cache.get("b", loader("b"))
    assert loads == ["a", "b", "c", "b"]


def test_its_size_comes_from_the_environment_or_the_kinds_default(monkeypatch):
    monkeypatch.delenv("STEPWISE_MODEL_CACHE_SIZE", raising=False)
    assert cache_size(2) == 2
    monkeypatch.setenv("STEPWISE_MODEL_CACHE_SIZE", "3")
    assert cache_size(1) == 3
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("STEPWISE_MODEL_CACHE_SIZE", bad)
        with pytest.raises(ValueError, match="STEPWISE_MODEL_CACHE_SIZE"):
            cache_size(1)
