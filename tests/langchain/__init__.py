"""Tests of the LangChain adapter (langchain_routellm)."""
