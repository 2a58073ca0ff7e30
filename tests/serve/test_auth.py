"""keys.toml loading and key checks (no server needed)."""

from __future__ import annotations

import pytest

from ragkit.errors import ConfigError
from ragkit.serve.auth import KeyRing, hash_key, keys_toml_entry, new_key


def _ring(*entries):
    return KeyRing.from_dict({"keys": list(entries)})


def test_sha256_and_scrypt_keys_authenticate_to_their_entry_only():
    a, b = new_key(), new_key()
    ring = _ring({"name": "a", "hash": hash_key(a), "tenant": "acme"},
                 {"name": "b", "hash": hash_key(b, "scrypt"), "tenant": "globex"})
    assert ring.authenticate(a).name == "a"
    assert ring.authenticate(b).name == "b"
    assert ring.authenticate(b).name == "b"  # second time from the verified-key memo
    assert ring.authenticate(a + "x") is None
    assert ring.authenticate("") is None and ring.authenticate(None) is None
    assert a not in repr(ring.keys)  # the plaintext key is nowhere in what was loaded


def test_fast_check_decides_all_but_an_unverified_scrypt_key():
    a, b = new_key(), new_key()
    ring = _ring({"name": "a", "hash": hash_key(a), "tenant": "acme"},
                 {"name": "b", "hash": hash_key(b, "scrypt"), "tenant": "globex"})
    decided, key = ring.authenticate_fast(a)
    assert decided and key.name == "a"
    assert ring.authenticate_fast("") == (True, None)
    assert ring.authenticate_fast(b) == (False, None)  # only scrypt can tell, and it has not run yet
    assert ring.authenticate_fast("wrong") == (False, None)
    assert ring.authenticate(b).name == "b"
    decided, key = ring.authenticate_fast(b)  # verified once: now the memo decides
    assert decided and key.name == "b"
    assert ring.authenticate_fast("wrong") == (False, None)  # a failed key is never memoised
    only_sha = _ring({"name": "a", "hash": hash_key(a), "tenant": "acme"})
    assert only_sha.authenticate_fast("wrong") == (True, None)


def test_default_filter_is_the_tenant_and_a_custom_filter_is_kept():
    ring = _ring({"name": "a", "hash": hash_key("k1"), "tenant": "acme"},
                 {"name": "b", "hash": hash_key("k2"), "tenant": "acme", "filter": ["tenant=acme", "product=cloud"]})
    a, b = ring.authenticate("k1"), ring.authenticate("k2")
    assert a.filter.test({"tenant": "acme"}) and not a.filter.test({"tenant": "globex"}) and not a.filter.test({})
    assert b.filter.test({"tenant": "acme", "product": "cloud"})
    assert not b.filter.test({"tenant": "acme", "product": "selfhosted"})


@pytest.mark.parametrize("entry, message", [
    ({"name": "a", "key": "plain", "tenant": "t"}, "store the key's hash"),
    ({"name": "a", "hash": "md5:abc", "tenant": "t"}, "malformed hash"),
    ({"name": "a", "hash": "sha256:zz", "tenant": "t"}, "malformed hash"),
    ({"name": "a", "hash": hash_key("k"), "tenant": ""}, "'tenant' is required"),
    ({"name": "a", "hash": hash_key("k"), "tenant": "t", "filter": []}, "all_tenants = true"),
    ({"name": "a", "hash": hash_key("k"), "tenant": "t", "filter": "tenant=="}, "filter"),
    ({"name": "a", "hash": hash_key("k"), "tenant": "t", "allow": ["admin"]}, "allow must be"),
    ({"name": "a", "hash": hash_key("k"), "tenant": "t", "rpm": 0}, "rpm"),
    ({"name": "a", "hash": hash_key("k"), "tenant": "t", "scope": "x"}, "unknown field 'scope'"),
])
def test_bad_entries_are_one_line_errors(entry, message):
    with pytest.raises(ConfigError, match=message) as info:
        _ring(entry)
    assert "\n" not in str(info.value)


def test_duplicate_hash_and_empty_file_are_refused(tmp_path):
    h = hash_key("k")
    with pytest.raises(ConfigError, match="same hash appears twice"):
        _ring({"name": "a", "hash": h, "tenant": "t"}, {"name": "b", "hash": h, "tenant": "u"})
    (tmp_path / "keys.toml").write_text("")
    with pytest.raises(ConfigError, match="no \\[\\[keys\\]\\] entries"):
        KeyRing.load(tmp_path / "keys.toml")
    with pytest.raises(ConfigError, match="not found"):
        KeyRing.load(tmp_path / "missing.toml")


def test_all_tenants_key_may_have_no_filter():
    ring = _ring({"name": "admin", "hash": hash_key("k"), "tenant": "ops", "filter": [], "all_tenants": True})
    assert ring.authenticate("k").filter.test({"tenant": "anything"})


def test_generated_entry_round_trips_through_toml(tmp_path):
    key = new_key()
    assert len(key) > 40
    (tmp_path / "keys.toml").write_text(keys_toml_entry("web", "acme", hash_key(key)))
    ring = KeyRing.load(tmp_path / "keys.toml")
    assert ring.authenticate(key).tenant == "acme"


def test_rate_limit_bucket():
    ring = _ring({"name": "a", "hash": hash_key("k"), "tenant": "t", "rpm": 2})
    key = ring.authenticate("k")
    assert key.take() == 0 and key.take() == 0
    assert key.take() > 0  # third request within the same minute waits
