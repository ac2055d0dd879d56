"""Which DynamoDB table each pynamodb model reads and writes: bound by the composition, never at import.

A model declares the table it lives in by key (`Meta = table_meta("chargers")`) and starts
unbound. `chargenet.composition` reads the function's environment into `TableNames` when it
builds the function's services and calls `bind_tables`, which sets `Meta.table_name` (and the
region) on every model of those tables, including models whose module is imported later. A model
used before that raises `TableNotBound` naming the table, instead of reaching DynamoDB with a
table name nobody configured.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, cast

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pynamodb.connection import Connection
from pynamodb.connection.table import TableConnection
from pynamodb.models import MetaProtocol, Model

DEFAULT_REGION = "us-east-1"


class TableNames(BaseModel):
    """The tables of the template, read by the variable each has in a function's environment.

    A function's environment names only the tables it may touch (test_iam_policies): the others
    stay None, and their models unbound.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    chargers: str | None = Field(None, alias="CHARGERS_TABLE")
    pending_calls: str | None = Field(None, alias="PENDING_CALLS_TABLE")
    idempotency: str | None = Field(None, alias="IDEMPOTENCY_TABLE")
    sessions: str | None = Field(None, alias="SESSIONS_TABLE")
    session_events: str | None = Field(None, alias="SESSION_EVENTS_TABLE")
    transaction_keys: str | None = Field(None, alias="TRANSACTION_KEYS_TABLE")
    tags: str | None = Field(None, alias="TAGS_TABLE")
    tariffs: str | None = Field(None, alias="TARIFFS_TABLE")
    cdrs: str | None = Field(None, alias="CDRS_TABLE")
    payments: str | None = Field(None, alias="PAYMENTS_TABLE")
    payment_events: str | None = Field(None, alias="PAYMENT_EVENTS_TABLE")
    subscribers: str | None = Field(None, alias="SUBSCRIBERS_TABLE")
    faults: str | None = Field(None, alias="FAULTS_TABLE")
    history: str | None = Field(None, alias="HISTORY_TABLE")
    provisioning_allowlist: str | None = Field(None, alias="PROVISIONING_ALLOWLIST_TABLE")
    audit: str | None = Field(None, alias="AUDIT_TABLE")
    operator_sign_outs: str | None = Field(None, alias="OPERATOR_SIGN_OUTS_TABLE")
    # Lambda sets both; boto3 alone reads only AWS_DEFAULT_REGION.
    region: str = Field(DEFAULT_REGION, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))


class TableNotBound(RuntimeError):
    """A model was used before the composition bound its table (chargenet.composition)."""


_metas: list[type] = []
_bound: TableNames | None = None
_binding = 0  # bumped by every bind_tables: models connected under an earlier one reconnect
_shared: Connection | None = None  # made on first use, for the settings of _shared_for
_shared_for: tuple[str | None, ...] = ()
# What a botocore session and client read once from the environment: a process that moves to
# another stack (the CLI, tests) changes one of them and gets a new client.
_CLIENT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")


def table_meta(table: str) -> MetaProtocol:
    """pynamodb's Meta for a model of `table` (a TableNames field): unbound until `bind_tables`."""
    if table not in TableNames.model_fields or table == "region":
        raise ValueError(f"{table!r} is not a table of TableNames")

    class Meta:
        table_key = table
        table_name: str | None = None
        region: str | None = None

    _apply(Meta, _bound)
    _metas.append(Meta)
    # The class itself is the Meta: pynamodb's metaclass gives it the rest of MetaProtocol when the
    # model class is made. table_name is None until bound, which TableModel checks before any call.
    return cast(MetaProtocol, Meta)


def bind_tables(names: TableNames) -> None:
    """Every model, of modules imported now or later, reads and writes the tables `names` gives,
    over a new connection: a new binding may name another endpoint with the same table names (a
    process that moves to another local stack), which pynamodb's cached connection would miss."""
    global _bound, _binding
    _bound = names
    _binding += 1
    for meta in _metas:
        _apply(meta, names)


def bound_tables() -> TableNames | None:
    return _bound


def dynamodb_connection() -> Connection:
    """The one DynamoDB connection of the binding, for every table, transaction and the idempotency store.

    pynamodb gives each model class a connection of its own, each with its own botocore session:
    every table touched by a cold invocation loaded the DynamoDB service model and built a client
    again. One connection loads it once and builds one client, and its botocore session becomes
    boto3's default: a new session costs ~0.15 baselines of cold start (endpoints, partitions,
    credentials), which the IoT Data, SNS or Secrets Manager client made next would pay again.
    """
    global _shared, _shared_for
    region = _bound.region if _bound else DEFAULT_REGION
    settings = (region, *(os.environ.get(name) for name in _CLIENT_VARIABLES))
    if _shared is None or settings != _shared_for:
        import boto3  # here: models alone never need it

        _shared, _shared_for = Connection(region=region), settings
        boto3.setup_default_session(botocore_session=_shared.session)
    return _shared


def _apply(meta: Any, names: TableNames | None) -> None:
    meta.table_name = getattr(names, meta.table_key) if names else None
    meta.region = names.region if names else None


class TableModel(Model):
    """A pynamodb Model whose table name is bound by the composition (its Meta from table_meta)."""

    _connected_under: ClassVar[int] = -1  # the binding its cached connection was made under

    @classmethod
    def _get_connection(cls) -> TableConnection:
        if getattr(cls.Meta, "table_name", None) is None:
            table = getattr(cls.Meta, "table_key", "?")
            raise TableNotBound(
                f"{cls.__name__}: the {table!r} table has no name: the function's services are built "
                "by chargenet.composition, which binds the table names of its environment "
                f"({TableNames.model_fields[table].alias if table in TableNames.model_fields else table})"
            )
        if cls._connected_under != _binding:
            cls._connection = None
            cls._connected_under = _binding
        before = cls._connection
        connection = super()._get_connection()
        if connection is not before:
            # The model keeps its own Connection (it holds the table's key schema, which models
            # of one table may declare differently) but sends through the shared client.
            connection.connection._client = dynamodb_connection().client
        return connection
