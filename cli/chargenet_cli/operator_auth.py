"""Operator sign-in: Cognito USER_PASSWORD_AUTH (and a TOTP code when the pool asks; TOTP enrolment), tokens cached
per profile in a 0600 file, refreshed with REFRESH_TOKEN_AUTH shortly before they expire.

The cache lives in `$CHARGENET_CONFIG_DIR` (default `~/.config/chargenet/`), `tokens/<profile>.json`.
Passwords and tokens are never printed or logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.parse
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


@dataclass(frozen=True)
class TotpEnrolment:
    """What an authenticator app needs to make an operator's TOTP codes (a secret: never logged)."""

    secret: str
    username: str

    def uri(self, issuer: str = "chargenet") -> str:
        label = urllib.parse.quote(f"{issuer}:{self.username}")
        return f"otpauth://totp/{label}?secret={self.secret}&issuer={urllib.parse.quote(issuer)}"

    def __repr__(self) -> str:
        return f"TotpEnrolment(username={self.username!r})"


def login(
    profile: Profile,
    username: str,
    password: str,
    mfa_code: Callable[[], str],
    cognito: Any = None,
    new_password: Callable[[], str] | None = None,
    show_enrolment: Callable[[TotpEnrolment], None] | None = None,
) -> Tokens:
    """Sign in and cache the tokens; a wrong password or an unknown user is a CliError.

    Cognito may answer with challenges, one after the other: NEW_PASSWORD_REQUIRED (an invited
    operator's first sign-in: `new_password()` gives the password they choose), MFA_SETUP (the
    pool requires TOTP and the operator has none yet: `show_enrolment` shows the secret for their
    authenticator app, `mfa_code()` gives its first code) and SOFTWARE_TOKEN_MFA (`mfa_code()`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    cognito = cognito or profile.cognito()

    def answer(name: str, session: str, responses: dict[str, str]) -> dict[str, Any]:
        return dict(
            cognito.respond_to_auth_challenge(
                ClientId=profile.client_id,
                ChallengeName=name,
                Session=session,
                ChallengeResponses={"USERNAME": username, **responses},
            )
        )

    def set_up_totp(session: str) -> dict[str, Any]:
        assert show_enrolment is not None
        association = cognito.associate_software_token(Session=session)
        show_enrolment(TotpEnrolment(association["SecretCode"], username))
        verified = cognito.verify_software_token(
            Session=association["Session"], UserCode=mfa_code().strip(), FriendlyDeviceName="chargenet CLI"
        )
        return answer("MFA_SETUP", verified["Session"], {})

    handlers: dict[str, Callable[[str], dict[str, Any]]] = {
        "SOFTWARE_TOKEN_MFA": lambda session: answer(
            "SOFTWARE_TOKEN_MFA", session, {"SOFTWARE_TOKEN_MFA_CODE": mfa_code().strip()}
        )
    }
    if new_password is not None:
        handlers["NEW_PASSWORD_REQUIRED"] = lambda session: answer(
            "NEW_PASSWORD_REQUIRED", session, {"NEW_PASSWORD": new_password()}
        )
    if show_enrolment is not None:
        handlers["MFA_SETUP"] = set_up_totp
    try:
        response = dict(
            cognito.initiate_auth(
                ClientId=profile.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        )
        for _ in range(len(handlers)):  # each challenge at most once
            challenge = response.get("ChallengeName")
            if challenge not in handlers:
                break
            response = handlers.pop(challenge)(response["Session"])
    except ClientError as exc:
        raise _sign_in_error(exc) from None
    except BotoCoreError as exc:
        raise CliError(f"sign-in failed: cannot reach Cognito ({exc})") from None
    challenge = response.get("ChallengeName")
    if challenge == "NEW_PASSWORD_REQUIRED":
        raise CliError("sign-in failed: this user must set a new password first (chargenet login)")
    if challenge == "MFA_SETUP":
        raise CliError(
            "sign-in failed: this pool requires an authenticator app: chargenet login (interactive)"
        )
    if challenge:
        raise CliError(f"sign-in failed: the pool asks for {challenge}, which this CLI does not answer")
    tokens = _tokens(response["AuthenticationResult"], profile, username)
    save(cache_path(profile), tokens)
    return tokens


def _sign_in_error(exc: Any) -> CliError:
    code = _error_code(exc)
    messages = {
        "NotAuthorizedException": _WRONG_CREDENTIALS,
        "UserNotFoundException": _WRONG_CREDENTIALS,
        "CodeMismatchException": "sign-in failed: wrong or expired authenticator code",
        "ExpiredCodeException": "sign-in failed: wrong or expired authenticator code",
        "EnableSoftwareTokenMFAException": "sign-in failed: wrong or expired authenticator code",
        "PasswordResetRequiredException": "sign-in failed: an administrator must reset this user's password",
        "InvalidPasswordException": "sign-in failed: the new password does not meet the pool's policy "
        "(14+ characters with upper and lower case, a digit and a symbol)",
        "UserNotConfirmedException": "sign-in failed: this user is not confirmed yet",
    }
    return CliError(
        messages.get(code) or f"sign-in failed: {exc.response.get('Error', {}).get('Message', code)}"
    )


def enrol_totp(
    profile: Profile,
    show_enrolment: Callable[[TotpEnrolment], None],
    mfa_code: Callable[[], str],
    cognito: Any = None,
) -> None:
    """Add an authenticator app to the signed-in operator and make TOTP their sign-in's second step
    (AssociateSoftwareToken, VerifySoftwareToken with its first code, SetUserMFAPreference)."""
    from botocore.exceptions import BotoCoreError, ClientError

    tokens = current(profile, cognito=cognito)
    cognito = cognito or profile.cognito()
    try:
        association = cognito.associate_software_token(AccessToken=tokens.access_token)
        show_enrolment(TotpEnrolment(association["SecretCode"], tokens.username))
        verified = cognito.verify_software_token(
            AccessToken=tokens.access_token, UserCode=mfa_code().strip(), FriendlyDeviceName="chargenet CLI"
        )
        if verified.get("Status") != "SUCCESS":
            raise CliError("the authenticator code did not match: chargenet mfa setup again")
        cognito.set_user_mfa_preference(
            AccessToken=tokens.access_token,
            SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
        )
    except ClientError as exc:
        raise CliError(str(_sign_in_error(exc)).replace("sign-in failed", "MFA setup failed")) from None
    except BotoCoreError as exc:
        raise CliError(f"MFA setup failed: cannot reach Cognito ({exc})") from None


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


def revoke(profile: Profile, tokens: Tokens, cognito: Any = None) -> str | None:
    """Revoke the refresh token with Cognito (RevokeToken; the clients have EnableTokenRevocation),
    which also ends the access and id tokens issued from it for Cognito's own APIs. None when done,
    else why not (the caller still forgets the tokens)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not tokens.refresh_token:
        return "no refresh token to revoke"
    cognito = cognito or profile.cognito()
    try:
        cognito.revoke_token(Token=tokens.refresh_token, ClientId=tokens.client_id)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status >= 500:  # its body is no message (moto, which lacks RevokeToken, answers a 500 page)
            return f"Cognito failed (HTTP {status})"
        return str(exc.response.get("Error", {}).get("Message") or _error_code(exc))
    except BotoCoreError as exc:
        return f"cannot reach Cognito ({exc})"
    return None


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
