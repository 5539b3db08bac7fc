"""Process-level failures. Per-frame failures are counted, never raised."""

from __future__ import annotations

# Exit codes (systemd contract: RestartPreventExitStatus=64 for configuration errors).
EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_CONFIG = 64


class AgentError(Exception):
    """Base for failures that stop a command with a readable message."""


class ConfigError(AgentError):
    """The configuration is invalid; `problems` lists every `path: message`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class SourceError(AgentError):
    """A source URL or input could not be opened."""


class OutputClosed(Exception):
    """The reader of standard output went away (`replay ... | head -1`): the command
    ends quietly with EXIT_OK. Not an AgentError and not a frame error: the pipeline
    lets it through rather than count it."""
