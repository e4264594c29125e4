"""Tokens, passwords and the credentials vault."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken

from handoff.service.security import Vault, check_password, hash_password, hash_token, new_token


def test_tokens_are_random_and_stored_only_as_hashes() -> None:
    first, second = new_token("hk"), new_token("hk")
    assert first != second and first.startswith("hk_")
    assert hash_token(first) == hash_token(first)
    assert first not in hash_token(first)


def test_passwords_are_salted_and_checked() -> None:
    stored = hash_password("correct horse battery")
    assert stored != hash_password("correct horse battery")  # salted
    assert "correct horse" not in stored
    assert check_password("correct horse battery", stored)
    assert not check_password("wrong", stored)
    assert not check_password("anything", None)


def test_vault_round_trips_and_refuses_another_key() -> None:
    sealed = Vault("key-one").seal({"api_token": "s3cret"})
    assert "s3cret" not in sealed
    assert Vault("key-one").open(sealed) == {"api_token": "s3cret"}
    with pytest.raises(InvalidToken):
        Vault("key-two").open(sealed)
