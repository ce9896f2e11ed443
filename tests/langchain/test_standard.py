"""The standard langchain-tests suites for ChatRouteLLM: a real router, fake models behind it."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_routellm import ChatRouteLLM
from routellm_core.routing import shared_router
from tests.langchain.fake_models import FakeToolChatModel


def _params() -> dict[str, Any]:
    return {
        "strong": FakeToolChatModel(model_name="fake-strong"),
        "weak": FakeToolChatModel(model_name="fake-weak"),
        "router": shared_router("default"),      # real, embedded default, shared
        "strong_fraction": 0.5,
    }


class _ChatRouteLLMSettings:
    """What both standard suites are told about ChatRouteLLM over the fake models."""

    @property
    def chat_model_class(self) -> type[ChatRouteLLM]:
        return ChatRouteLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _params()

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        params = super().standard_chat_model_params  # type: ignore[misc]
        params.pop("api_key", None)  # ChatRouteLLM calls no API itself: it rejects api_key
        return params

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class TestChatRouteLLMUnit(_ChatRouteLLMSettings, ChatModelUnitTests):
    pass


class TestChatRouteLLMIntegration(_ChatRouteLLMSettings, ChatModelIntegrationTests):
    # The project sets no asyncio_mode: run the suite's async tests on pytest-asyncio. The mark
    # reaches the sync tests too (the suite forbids overriding its tests to mark them one by
    # one), where pytest-asyncio only warns; that warning is silenced here.
    pytestmark = [
        pytest.mark.asyncio,
        pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'"),
    ]

    @property
    def supports_json_mode(self) -> bool:
        return False


def _nway_params() -> dict[str, Any]:
    names = ("llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it")
    return {
        "models": {name: FakeToolChatModel(model_name=name) for name in names},
        "router": shared_router("default", nway=True),  # real, embedded N-way default, shared
        "lambdas": {"cost": 0.1},
    }


class _NWaySettings(_ChatRouteLLMSettings):
    """The same suites for ChatRouteLLM routing among three models (N-way)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _nway_params()


class TestChatRouteLLMNWayUnit(_NWaySettings, ChatModelUnitTests):
    pass


class TestChatRouteLLMNWayIntegration(_NWaySettings, ChatModelIntegrationTests):
    pytestmark = TestChatRouteLLMIntegration.pytestmark

    @property
    def supports_json_mode(self) -> bool:
        return False
