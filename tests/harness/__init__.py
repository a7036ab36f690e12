"""Test harnesses that need more than a fixture: network namespaces for the user plane (``netns``)."""
