"""Sign the local stack's first admin in, as `chargenet login --username admin` would: what the demo,
the scenario runner and the integration tests do before they run operator commands.

The password is read from the stack's `first-admin-password` file (0600, written by
`chargenet local up`, never logged); the tokens are cached where the CLI keeps them for the local
profile (CHARGENET_CONFIG_DIR, see chargenet_cli.operator_auth).
"""

from __future__ import annotations

import os
from pathlib import Path

from chargenet_cli import operator_auth, operator_profile
from chargenet_cli.errors import CliError
from chargenet_local.stack import FIRST_ADMIN, FIRST_ADMIN_PASSWORD_FILE, StackState


def _no_mfa() -> str:
    raise CliError("the local stack's first admin has no authenticator: turn MFA off for it")


def act_as_first_admin(state: StackState) -> operator_auth.Tokens:
    """This process (a test run, a benchmark) runs operator commands as the stack's first admin,
    with a token cache of its own beside the stack: the operator's own cache is left alone."""
    os.environ["CHARGENET_CONFIG_DIR"] = str(Path(state.home) / "operator-config")
    return sign_in_first_admin(state)


def signed_in(state: StackState) -> None:
    """Sign the first admin in unless someone is signed in to this stack already (`chargenet
    scenario` on a stack an operator uses keeps their session)."""
    try:
        operator_auth.current(operator_profile.local_profile(Path(state.home)))
    except CliError:
        sign_in_first_admin(state)


def sign_in_first_admin(state: StackState) -> operator_auth.Tokens:
    home = Path(state.home)
    password = (home / FIRST_ADMIN_PASSWORD_FILE).read_text().strip()
    profile = operator_profile.local_profile(home)
    return operator_auth.login(profile, FIRST_ADMIN, password, _no_mfa)
