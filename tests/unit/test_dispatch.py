"""The server's dispatcher: moto's backend for each host, looked up once per host name (localcloud.dispatch)."""

from __future__ import annotations

from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from localcloud import dispatch
from localcloud.dispatch import CachedDispatcher

HOSTS = [
    "s3.eu-west-1.amazonaws.com",
    "sns.eu-west-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "lambda.eu-west-1.amazonaws.com",
    "logs.eu-west-1.amazonaws.com",
    "moto_api",
    "s3",
    "nothing.example.com",
]


@pytest.mark.parametrize("host", HOSTS)
def test_each_host_gets_motos_own_backend(host: str) -> None:
    assert CachedDispatcher(create_backend_app).get_backend_for_host(host) == DomainDispatcherApplication(
        create_backend_app
    ).get_backend_for_host(host)


def test_no_host_is_no_backend() -> None:
    assert CachedDispatcher(create_backend_app).get_backend_for_host(None) is None


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The hosts moto's own lookup is asked for, in order."""
    calls: list[str | None] = []
    original = DomainDispatcherApplication.get_backend_for_host

    def counting(self: Any, host: str | None) -> Any:
        calls.append(host)
        return original(self, host)

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", counting)
    return calls


def test_a_host_is_looked_up_once(lookups: list[str | None]) -> None:
    dispatcher = CachedDispatcher(create_backend_app)
    answers = {dispatcher.get_backend_for_host("s3.eu-west-1.amazonaws.com") for _ in range(5)}
    assert answers == {"s3"}
    assert lookups == ["s3.eu-west-1.amazonaws.com"]


def test_names_beyond_the_limit_are_looked_up_every_time(
    monkeypatch: pytest.MonkeyPatch, lookups: list[str | None]
) -> None:
    monkeypatch.setattr(dispatch, "MAX_HOSTS", 1)
    dispatcher = CachedDispatcher(create_backend_app)
    for _ in range(2):
        dispatcher.get_backend_for_host("s3.eu-west-1.amazonaws.com")
        dispatcher.get_backend_for_host("sns.eu-west-1.amazonaws.com")
    assert lookups == ["s3.eu-west-1.amazonaws.com", "sns.eu-west-1.amazonaws.com", "sns.eu-west-1.amazonaws.com"]
