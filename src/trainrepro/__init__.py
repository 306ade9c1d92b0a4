"""trainrepro: a DVC pipeline reproducing MentorNet, Local-to-Global Learning, LLb-SGD and
hard-threshold alternation."""

__version__ = "0.1.0"
