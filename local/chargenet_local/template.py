"""template.yaml, read the way CloudFormation would: SAM transform, then intrinsics.

The local stack builds everything from this view of the template (tables, queues,
topics, the IoT policy, the rules and each function's environment), so the local
stack and the cloud cannot drift apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
STACK_NAME = "chargenet-local"
_LOCAL_CODE_PREFIX = "s3://local-code/"


def bucket_name(logical_id: str) -> str:
    """A bucket's name, lowercase as S3 wants it: the stack's name, then its logical id."""
    return f"{STACK_NAME}-{logical_id}".lower()


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _short_form(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_s: int
    memory_mb: int
    dead_letter_queue: str | None  # logical id
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions


@dataclass(frozen=True)
class RuleSpec:
    name: str
    sql: str
    function: str  # logical id of the Lambda action
    error_queue: str | None  # logical id of the SQS error action


@dataclass(frozen=True)
class StreamMappingSpec:
    """A Lambda event source mapping on a DynamoDB stream."""

    name: str
    table: str  # logical id
    function: str  # logical id
    batch_size: int
    max_retries: int
    filter_patterns: list[dict[str, Any]]
    on_failure_queue: str | None  # logical id
    reports_item_failures: bool


@dataclass(frozen=True)
class JwtAuthorizerSpec:
    """An HTTP API JWT authorizer (SAM `Auth.Authorizers.<name>.JwtConfiguration`), resolved."""

    name: str
    issuer: str
    audience: tuple[str, ...]
    identity_source: str  # "$request.header.Authorization"
    scopes: tuple[str, ...] = ()  # the route's authorizationScopes: the token needs one of them


@dataclass(frozen=True)
class HttpRouteSpec:
    """A route of an HTTP API (SAM `HttpApi` event) with a Lambda proxy integration, payload 2.0."""

    api: str  # logical id of the AWS::ApiGatewayV2::Api
    method: str  # GET, POST, ... or ANY
    path: str  # "/pay/{charger}/{connector}", "/files/{proxy+}" or "$default"
    function: str  # logical id
    authorizer: JwtAuthorizerSpec | None = None  # the route's `Auth.Authorizer`; None: public

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    every_s: int
    function: str  # logical id


def _rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"schedule {expression!r}: only rate(...) expressions run locally")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match[2].rstrip("s")]
    return int(match[1]) * unit


@dataclass
class Template:
    root: Path
    region: str
    parameters: dict[str, str]
    resources: dict[str, dict[str, Any]]
    code_paths: dict[str, Path] = field(default_factory=dict)
    # Ids the local stack only learns when it creates a resource (moto names user pools and
    # clients itself): `Ref` answers these instead of the logical id.
    physical_ids: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ intrinsics
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.get_att(*arg)
            if key == "Fn::Sub":
                return self._sub(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical_ids:
            return self.physical_ids[name]
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"http://sqs.{self.region}.localhost/{ACCOUNT_ID}/{name}"  # replaced by moto's URL
        if kind == "AWS::SNS::Topic":
            return self.arn("sns", name)
        if kind == "AWS::SecretsManager::Secret":
            # A partial ARN (no random suffix): Secrets Manager and moto accept it as SecretId.
            return self.arn("secretsmanager", f"secret:{self.secret_name(name)}")
        if kind == "AWS::S3::Bucket":
            return bucket_name(name)
        return name  # tables, functions, policies, keys: the logical id is the physical name locally

    def get_att(self, name: str, attribute: str) -> str:
        resource = self.resources[name]
        kind = resource["Type"]
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return name  # queues are named by their logical id locally (aws_resources)
        if attribute != "Arn":
            raise ValueError(f"GetAtt {name}.{attribute} is not supported locally")
        named = resource.get("Properties", {})
        service_path = {
            "AWS::DynamoDB::Table": lambda: ("dynamodb", f"table/{name}"),
            "AWS::SQS::Queue": lambda: ("sqs", name),
            "AWS::Lambda::Function": lambda: ("lambda", f"function:{name}"),
            "AWS::KMS::Key": lambda: ("kms", f"key/{name}"),
            "AWS::IAM::Role": lambda: ("iam", f"role/{name}"),
            "AWS::IoT::TopicRule": lambda: ("iot", f"rule/{self.resolve(named['RuleName'])}"),
            "AWS::CloudWatch::Alarm": lambda: (
                "cloudwatch",
                f"alarm:{self.resolve(named.get('AlarmName', name))}",
            ),
        }
        default = (kind.split("::")[1].lower(), name)
        service, path = service_path[kind]() if kind in service_path else default
        return self.arn(service, path)

    def secret_name(self, logical_id: str) -> str:
        props = self.resources[logical_id].get("Properties", {})
        return str(self.resolve(props["Name"])) if "Name" in props else logical_id

    def arn(self, service: str, resource: str) -> str:
        account = "" if service == "s3" else ACCOUNT_ID
        return f"arn:aws:{service}:{self.region}:{account}:{resource}"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr:
                return self.get_att(*expr.split(".", 1))
            return self.ref(expr)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # ------------------------------------------------------------ resources
    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == kind}

    def functions(self) -> dict[str, FunctionSpec]:
        specs = {}
        for name, res in self.of_type("AWS::Lambda::Function").items():
            props = res["Properties"]
            variables = self.resolve(props.get("Environment", {}).get("Variables", {}))
            dlq_arn = props.get("DeadLetterConfig", {}).get("TargetArn")
            specs[name] = FunctionSpec(
                logical_id=name,
                code_dir=self.code_paths[name],
                handler=props["Handler"],
                environment={k: str(v) for k, v in variables.items()},
                timeout_s=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                dead_letter_queue=dlq_arn["Fn::GetAtt"][0] if isinstance(dlq_arn, dict) else None,
                reserved_concurrency=_optional_int(props.get("ReservedConcurrentExecutions")),
            )
        return specs

    def stream_mappings(self) -> list[StreamMappingSpec]:
        mappings = []
        for name, res in self.of_type("AWS::Lambda::EventSourceMapping").items():
            props = res["Properties"]
            source = props["EventSourceArn"].get("Fn::GetAtt", [None, None])
            if source[1] != "StreamArn":
                raise ValueError(f"{name}: only DynamoDB stream event sources are supported locally")
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", {})
            mappings.append(
                StreamMappingSpec(
                    name=name,
                    table=source[0],
                    function=props["FunctionName"]["Ref"],
                    batch_size=int(props.get("BatchSize", 100)),
                    max_retries=int(props.get("MaximumRetryAttempts", 3)),
                    filter_patterns=[
                        json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])
                    ],
                    on_failure_queue=on_failure.get("Fn::GetAtt", [None])[0],
                    reports_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                )
            )
        return mappings

    def schedules(self) -> list[ScheduleSpec]:
        specs = []
        for name, res in self.of_type("AWS::Events::Rule").items():
            props = res["Properties"]
            if "ScheduleExpression" not in props:
                continue
            for target in props["Targets"]:
                function = target["Arn"]["Fn::GetAtt"][0]
                specs.append(ScheduleSpec(name, _rate_seconds(props["ScheduleExpression"]), function))
        return specs

    def http_routes(self) -> list[HttpRouteSpec]:
        """Every route of every HTTP API, from the OpenAPI body SAM generates for `HttpApi` events."""
        routes = []
        for api, res in self.of_type("AWS::ApiGatewayV2::Api").items():
            body = res["Properties"].get("Body", {})
            schemes = body.get("components", {}).get("securitySchemes", {})
            for path, operations in body.get("paths", {}).items():
                for operation, spec in operations.items():
                    if not isinstance(spec, dict):
                        continue  # path-level `parameters`
                    integration = spec.get("x-amazon-apigateway-integration", {})
                    if integration.get("type") != "aws_proxy":
                        continue
                    if str(integration.get("payloadFormatVersion")) != "2.0":
                        raise ValueError(f"{api} {path}: only payload format 2.0 runs locally")
                    method = "ANY" if operation == "x-amazon-apigateway-any-method" else operation.upper()
                    security = spec.get("security", body.get("security")) or []
                    authorizer = self._authorizer(api, path, schemes, security)
                    routes.append(
                        HttpRouteSpec(api, method, path, _integrated_function(integration["uri"]), authorizer)
                    )
        return routes

    def _authorizer(
        self, api: str, path: str, schemes: dict[str, Any], security: list[dict[str, list[str]]]
    ) -> JwtAuthorizerSpec | None:
        """The route's authorizer from the OpenAPI `security` SAM writes for `Auth.Authorizer`."""
        named = [(name, scopes) for requirement in security for name, scopes in requirement.items()]
        named = [(name, scopes) for name, scopes in named if name != "NONE"]
        if not named:
            return None
        if len(named) > 1:
            raise ValueError(f"{api} {path}: one authorizer per route runs locally")
        [(name, scopes)] = named
        config = schemes[name].get("x-amazon-apigateway-authorizer", {})
        if config.get("type") != "jwt":
            raise ValueError(f"{api} {path}: only JWT authorizers run locally, not {name}")
        jwt_config = self.resolve(config["jwtConfiguration"])
        return JwtAuthorizerSpec(
            name=name,
            issuer=str(jwt_config["issuer"]),
            audience=tuple(str(a) for a in jwt_config.get("audience", [])),
            identity_source=str(config.get("identitySource", "$request.header.Authorization")),
            scopes=tuple(scopes),
        )

    def rules(self) -> list[RuleSpec]:
        rules = []
        for res in self.of_type("AWS::IoT::TopicRule").values():
            props = res["Properties"]
            payload = props["TopicRulePayload"]
            [action] = payload["Actions"]
            error_queue = payload.get("ErrorAction", {}).get("Sqs", {}).get("QueueUrl", {}).get("Ref")
            rules.append(
                RuleSpec(
                    name=self.resolve(props["RuleName"]),
                    sql=payload["Sql"],
                    function=action["Lambda"]["FunctionArn"]["Fn::GetAtt"][0],
                    error_queue=error_queue,
                )
            )
        return rules


def _integrated_function(uri: Any) -> str:
    """The function in `arn:...:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations`."""
    text = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
    text = text[0] if isinstance(text, list) else text
    match = re.search(r"\$\{(\w+)\.Arn\}", str(text))
    if not match:
        raise ValueError(f"integration {uri!r}: only Lambda functions of this template run locally")
    return match[1]


def load(path: Path, *, region: str, overrides: dict[str, str] | None = None) -> Template:
    """Read and SAM-transform the template, with parameter overrides (else defaults)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = yaml.load(path.read_text(), Loader=_CfnLoader)
    code_paths = _swap_local_code_uris(document, path.parent)
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    # The managed-policy map is for policies named in the template; it names none.
    transformed = translator.translate(document, parameter_values={}, get_managed_policy_map=dict)
    parameters = {
        name: str(spec["Default"])
        for name, spec in document.get("Parameters", {}).items()
        if "Default" in spec
    }
    parameters.update(overrides or {})
    template = Template(path.parent, region, parameters, transformed["Resources"])
    template.code_paths = code_paths
    return template


def _swap_local_code_uris(document: dict[str, Any], root: Path) -> dict[str, Path]:
    """samtranslator wants S3 URIs (sam build uploads the code); keep the local folders aside."""
    paths = {}
    for name, res in document["Resources"].items():
        props = res.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                paths[name] = (root / props[key]).resolve()
                props[key] = f"{_LOCAL_CODE_PREFIX}{name}"
    return paths


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))
