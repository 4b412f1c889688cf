"""The one exception type the CLI turns into a single line on stderr (no traceback)."""


class CliError(Exception):
    """A user-facing failure, already phrased as one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message.replace("\n", " "))
        self.exit_code = exit_code
