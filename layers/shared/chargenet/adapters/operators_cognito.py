"""The operator accounts in the Cognito user pool (OperatorUserPool): its users, their groups."""

from __future__ import annotations

import secrets
import string
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from chargenet.adapters.aws_clients import client_at_first_use
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.operators import Role, roles_of
from chargenet.ports.audit import Key, Page
from chargenet.ports.operators import OperatorAccount, OperatorDirectory, UsernameTaken

MAX_PAGE = 60  # ListUsers' largest Limit


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def temporary_password() -> str:
    """Random, within OperatorUserPool's policy (14+ characters, upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(20))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(string.ascii_lowercase) + "4!"


@raises_store_unavailable
class CognitoOperatorDirectory(OperatorDirectory):
    def __init__(self, pool_id: str, local_invitations: bool = False, client: Any = None) -> None:
        self.pool_id = pool_id
        # The local stack (moto) sends no e-mail: an invitation's temporary password would reach
        # no one, so there (only) it is suppressed and the password is handed back to the admin
        # who invited, once. The cloud never sets this: Cognito e-mails the invitation itself.
        self.local_invitations = local_invitations
        self._given_client = client

    @cached_property
    def _client(self) -> Any:
        return client_at_first_use("cognito-idp", self._given_client)

    def accounts(self, limit: int, start: Key | None) -> Page[OperatorAccount]:
        kwargs: dict[str, Any] = {"UserPoolId": self.pool_id, "Limit": min(limit, MAX_PAGE)}
        if start and start.get("token"):
            kwargs["PaginationToken"] = str(start["token"])
        found = self._client.list_users(**kwargs)
        accounts = [self._account(user) for user in found.get("Users", [])]
        token = found.get("PaginationToken")
        return Page(accounts, {"token": token} if token else None)

    def invite(self, username: str, email: str, role: Role) -> str | None:
        kwargs: dict[str, Any] = {
            "UserPoolId": self.pool_id,
            "Username": username,
            "UserAttributes": [
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
        }
        password = None
        if self.local_invitations:
            password = temporary_password()
            kwargs |= {"TemporaryPassword": password, "MessageAction": "SUPPRESS"}
        else:
            kwargs["DesiredDeliveryMediums"] = ["EMAIL"]
        try:
            self._client.admin_create_user(**kwargs)
        except ClientError as error:
            if _code(error) == "UsernameExistsException":
                raise UsernameTaken(username) from None
            raise
        self._client.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=role.value)
        return password

    def set_role(self, username: str, role: Role) -> bool:
        try:
            groups = self._groups(username)
        except ClientError as error:
            if _code(error) == "UserNotFoundException":
                return False
            raise
        for group in groups:
            if group != role.value and group in {r.value for r in Role}:
                self._client.admin_remove_user_from_group(
                    UserPoolId=self.pool_id, Username=username, GroupName=group
                )
        if role.value not in groups:
            self._client.admin_add_user_to_group(
                UserPoolId=self.pool_id, Username=username, GroupName=role.value
            )
        return True

    def remove(self, username: str) -> bool:
        try:
            self._client.admin_disable_user(UserPoolId=self.pool_id, Username=username)
            self._client.admin_delete_user(UserPoolId=self.pool_id, Username=username)
        except ClientError as error:
            if _code(error) == "UserNotFoundException":
                return False
            raise
        return True

    def _groups(self, username: str) -> list[str]:
        found = self._client.admin_list_groups_for_user(UserPoolId=self.pool_id, Username=username)
        return [str(g["GroupName"]) for g in found.get("Groups", [])]

    def _account(self, user: dict[str, Any]) -> OperatorAccount:
        username = str(user["Username"])
        attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
        return OperatorAccount(
            username=username,
            email=attributes.get("email"),
            roles=sorted(r.value for r in roles_of(self._groups(username))),
            status=str(user.get("UserStatus", "")),
            enabled=bool(user.get("Enabled", True)),
            created_at=user.get("UserCreateDate"),
        )
