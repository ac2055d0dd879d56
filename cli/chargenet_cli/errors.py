"""Errors the CLI reports as a message and a non-zero exit, never as a traceback."""


class CliError(Exception):
    exit_code = 1


class UsageError(CliError):
    exit_code = 2
