"""A function's environment, read into a pydantic model when its services are first built.

Every composition module starts the same way: `env = environment(TheFunctionsEnvironment)`,
which validates the variables the template gives the function (a missing or malformed one is a
clear error naming it) and binds the table names it holds onto the pynamodb models
(chargenet.adapters.tables). Nothing reads the environment when a module is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chargenet.adapters.tables import TableNames, bind_tables


class FunctionEnvironment(BaseModel):
    """What a function's environment holds: the tables it is given, and its own settings (subclasses)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    tables: TableNames

    @model_validator(mode="before")
    @classmethod
    def _tables_from_the_same_variables(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "tables" not in data:
            return {**data, "tables": dict(data)}
        return data


class AlertEnvironment(FunctionEnvironment):
    """The functions that track faults: where alerts go, and how long a major fault waits first."""

    major_alert_after_s: int = Field(600, alias="MAJOR_ALERT_AFTER_S")


E = TypeVar("E", bound=FunctionEnvironment)


def environment(model: type[E], environ: Mapping[str, str] | None = None) -> E:
    """The function's environment (os.environ unless given) as `model`, its tables bound."""
    env = model.model_validate(dict(os.environ if environ is None else environ))
    bind_tables(env.tables)
    return env


def bind_environment(environ: Mapping[str, str]) -> TableNames:
    """Bind the tables a set of variables names (what the CLI does for the local stack)."""
    return environment(FunctionEnvironment, environ).tables
