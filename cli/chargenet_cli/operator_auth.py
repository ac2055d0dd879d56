"""Operator sign-in: Cognito USER_PASSWORD_AUTH (and a TOTP code when the pool asks), tokens cached
per profile in a 0600 file, refreshed with REFRESH_TOKEN_AUTH shortly before they expire.

The cache lives in `$CHARGENET_CONFIG_DIR` (default `~/.config/chargenet/`), `tokens/<profile>.json`.
Passwords and tokens are never printed or logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chargenet_cli.errors import CliError
from chargenet_cli.operator_profile import Profile

REFRESH_MARGIN_S = 60  # refresh when the access token has less than this left
NOT_SIGNED_IN = "not signed in or session expired: chargenet login"
_WRONG_CREDENTIALS = "sign-in failed: wrong user name or password"


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds: when the access (and id) token expires
    client_id: str  # the app client they were issued to: a cache from another pool is not used
    username: str

    def needs_refresh(self, now: float | None = None) -> bool:
        return self.expires_at - (time.time() if now is None else now) < REFRESH_MARGIN_S

    def __repr__(self) -> str:  # never a token in a traceback or a log line
        return (
            f"Tokens(username={self.username!r}, client_id={self.client_id!r}, expires_at={self.expires_at})"
        )


def config_dir() -> Path:
    configured = os.environ.get("CHARGENET_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".config" / "chargenet"


def cache_path(profile: Profile) -> Path:
    return config_dir() / "tokens" / f"{profile.key}.json"


def save(path: Path, tokens: Tokens) -> None:
    """Write the cache 0600 from its creation (a new file replaces the old one atomically)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask: never more, never less
        with os.fdopen(descriptor, "w") as out:
            json.dump(asdict(tokens), out)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def load(path: Path) -> Tokens | None:
    try:
        data = json.loads(path.read_text())
        return Tokens(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None  # a damaged cache: as if signed out


def delete(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _tokens(result: dict[str, Any], profile: Profile, username: str, refresh_token: str = "") -> Tokens:
    return Tokens(
        id_token=result["IdToken"],
        access_token=result["AccessToken"],
        refresh_token=result.get("RefreshToken") or refresh_token,
        expires_at=time.time() + int(result.get("ExpiresIn", 3600)),
        client_id=profile.client_id,
        username=username,
    )


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def login(
    profile: Profile,
    username: str,
    password: str,
    mfa_code: Callable[[], str],
    cognito: Any = None,
    new_password: Callable[[], str] | None = None,
) -> Tokens:
    """Sign in and cache the tokens; a wrong password or an unknown user is a CliError.

    An invited operator's first sign-in (with the temporary password) is answered by Cognito with
    NEW_PASSWORD_REQUIRED: `new_password()` gives the password they choose, and it is set then."""
    from botocore.exceptions import BotoCoreError, ClientError

    cognito = cognito or profile.cognito()
    try:
        response = cognito.initiate_auth(
            ClientId=profile.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        challenge = response.get("ChallengeName")
        if challenge == "SOFTWARE_TOKEN_MFA":
            response = cognito.respond_to_auth_challenge(
                ClientId=profile.client_id,
                ChallengeName=challenge,
                Session=response["Session"],
                ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": mfa_code().strip()},
            )
            challenge = response.get("ChallengeName")
        if challenge == "NEW_PASSWORD_REQUIRED" and new_password is not None:
            response = cognito.respond_to_auth_challenge(
                ClientId=profile.client_id,
                ChallengeName=challenge,
                Session=response["Session"],
                ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": new_password()},
            )
            challenge = response.get("ChallengeName")
    except ClientError as exc:
        code = _error_code(exc)
        if code in ("NotAuthorizedException", "UserNotFoundException"):
            raise CliError(_WRONG_CREDENTIALS) from None
        if code in ("CodeMismatchException", "ExpiredCodeException"):
            raise CliError("sign-in failed: wrong or expired authenticator code") from None
        if code == "PasswordResetRequiredException":
            raise CliError("sign-in failed: an administrator must reset this user's password") from None
        if code == "InvalidPasswordException":
            raise CliError(
                "sign-in failed: the new password does not meet the pool's policy "
                "(14+ characters with upper and lower case, a digit and a symbol)"
            ) from None
        if code == "UserNotConfirmedException":
            raise CliError("sign-in failed: this user is not confirmed yet") from None
        raise CliError(f"sign-in failed: {exc.response.get('Error', {}).get('Message', code)}") from None
    except BotoCoreError as exc:
        raise CliError(f"sign-in failed: cannot reach Cognito ({exc})") from None
    if challenge == "NEW_PASSWORD_REQUIRED":
        raise CliError("sign-in failed: this user must set a new password first (chargenet login)")
    if challenge:
        raise CliError(f"sign-in failed: the pool asks for {challenge}, which this CLI does not answer")
    tokens = _tokens(response["AuthenticationResult"], profile, username)
    save(cache_path(profile), tokens)
    return tokens


def refresh(profile: Profile, tokens: Tokens, cognito: Any = None) -> Tokens:
    """New access and id tokens for the cached refresh token (which Cognito keeps as it is)."""
    from botocore.exceptions import BotoCoreError, ClientError

    cognito = cognito or profile.cognito()
    try:
        response = cognito.initiate_auth(
            ClientId=profile.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens.refresh_token},
        )
    except ClientError as exc:
        if _error_code(exc) == "NotAuthorizedException":  # revoked or expired refresh token
            delete(cache_path(profile))
            raise CliError(NOT_SIGNED_IN) from None
        raise CliError(
            f"session refresh failed: {exc.response.get('Error', {}).get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"session refresh failed: cannot reach Cognito ({exc})") from None
    renewed = _tokens(response["AuthenticationResult"], profile, tokens.username, tokens.refresh_token)
    save(cache_path(profile), renewed)
    return renewed


def current(profile: Profile, now: float | None = None, cognito: Any = None) -> Tokens:
    """The cached tokens, refreshed first when the access token is within a minute of expiry."""
    tokens = load(cache_path(profile))
    if tokens is None or tokens.client_id != profile.client_id:
        raise CliError(NOT_SIGNED_IN)
    if tokens.needs_refresh(now):
        if not tokens.refresh_token:
            raise CliError(NOT_SIGNED_IN)
        tokens = refresh(profile, tokens, cognito)
    return tokens
