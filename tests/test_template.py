"""deploy/template.yaml, checked offline: cfn-lint, least privilege, the runtime contract's
environment, table, queue, body bucket, routes and alarms, the packaging, agreement with the code
that runs under it (`adapters.runtime.config` accepts every parameter value the stack admits; the
table is the one `sendguard provision` creates), and the operations guide's coverage of every alarm.

Each checker returns what is wrong (an empty list: nothing). Each runs once on the real template and
once more on a copy broken on purpose, to show that it can fail.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str
from cfnlint.helpers import REGIONS

from adapters.ops.provision import TABLE_DEFINITION
from adapters.runtime import log_events
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.metrics import DIMENSIONS as EMF_DIMENSIONS
from bench.coldstart import function_package

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
GUIDE = ROOT / "docs" / "operations.md"
PYPROJECT = ROOT / "pyproject.toml"

Template = dict[str, Any]
Check = Callable[[Template], list[str]]

# ---- the runtime contract, as the template must serve it -----------------------------------------

SUBMIT, RECONCILER = "SubmitFunction", "ReconcilerFunction"
HANDLERS = {SUBMIT: "adapters.aws_lambda.submit", RECONCILER: "adapters.aws_lambda.reconcile"}
LOG_GROUPS = {SUBMIT: "SubmitLogGroup", RECONCILER: "ReconcilerLogGroup"}

# The bucket of the bodies too large for a DynamoDB item, and the parameter of their key prefix.
BUCKET, BODY_PREFIX = "BodyBucket", "BodyPrefix"
# The one wildcard a grant may have: the bucket's objects under the prefix,
# !Sub "${BodyBucket.Arn}/${BodyPrefix}*", named "BodyBucket/objects" below.
BODY_OBJECTS = f"${{{BUCKET}.Arn}}/${{{BODY_PREFIX}}}*"
OBJECT_ACTIONS = {"s3:GetObject", "s3:PutObject"}

# (action, resource) for every grant of each function's role. Resources are named symbolically:
# "Table" is !GetAtt Table.Arn, "Table/index/attention" is !Sub "${Table.Arn}/index/attention",
# "BodyBucket/objects" is BODY_OBJECTS.
GRANTS = {
    SUBMIT: {
        ("dynamodb:UpdateItem", "Table"),
        ("dynamodb:GetItem", "Table"),
        ("dynamodb:PutItem", "Table"),
        ("dynamodb:DescribeTable", "Table"),  # after a refused key: which layout setting is wrong
        ("s3:PutObject", f"{BUCKET}/objects"),
        ("s3:GetObject", f"{BUCKET}/objects"),
        ("sqs:SendMessage", "Queue"),
        ("logs:CreateLogStream", "SubmitLogGroup"),
        ("logs:PutLogEvents", "SubmitLogGroup"),
    },
    RECONCILER: {
        ("dynamodb:Query", "Table/index/attention"),
        ("dynamodb:UpdateItem", "Table"),
        ("dynamodb:BatchGetItem", "Table"),
        ("dynamodb:DescribeTable", "Table"),  # the layout checked at a container's first pass
        ("s3:GetObject", f"{BUCKET}/objects"),
        ("sqs:SendMessage", "Queue"),
        ("logs:CreateLogStream", "ReconcilerLogGroup"),
        ("logs:PutLogEvents", "ReconcilerLogGroup"),
    },
}
FORBIDDEN_EVERYWHERE = {
    "dynamodb:DeleteItem",
    "dynamodb:Scan",
    "sqs:DeleteMessage",
    "sqs:PurgeQueue",
    "s3:DeleteObject",
    "s3:ListBucket",
}
FORBIDDEN = {
    SUBMIT: FORBIDDEN_EVERYWHERE | {"dynamodb:Query", "dynamodb:BatchGetItem"},
    # It reads by key with BatchGetItem alone, and writes nothing but its records' updates.
    RECONCILER: FORBIDDEN_EVERYWHERE | {"dynamodb:GetItem", "dynamodb:PutItem", "s3:PutObject"},
}

# Each variable's value: a resource reference, or a parameter whose default is the contract's.
ENVIRONMENT: dict[str, Any] = {
    "SENDGUARD_TABLE": {"Ref": "Table"},
    "SENDGUARD_QUEUE_URL": {"Ref": "Queue"},
    "SENDGUARD_MAX_ATTEMPTS": 10,
    "SENDGUARD_REDRIVE_AFTER_SECONDS": 60,
    "SENDGUARD_LEASE_MARGIN_SECONDS": 30,
    "SENDGUARD_AWS_MAX_ATTEMPTS": 3,
    "SENDGUARD_LOG_LEVEL": "INFO",
    "SENDGUARD_METRICS_NAMESPACE": {"Fn::Sub": "sendguard/${AWS::StackName}"},
    "SENDGUARD_BODY_BUCKET": {"Ref": BUCKET},
    "SENDGUARD_BODY_PREFIX": "sendguard/bodies/",
}
MAX_ATTEMPTS_LIMIT = 20

# The log lines operators and alarms rely on, and their fields.
# What each log line carries: owned by adapters.runtime.log_events, the module the logs write through.
LOG_EVENTS = {
    name: event.fields | log_events.CONTEXT_FIELDS | log_events.LINE_FIELDS
    for name, event in log_events.EVENTS.items()
}

# Which log group each line is written to: API answers by the submit function, passes by the
# reconciler; the others by whichever function makes the transition.
LOGGED_BY = {
    "answer": {"SubmitLogGroup"},
    "reconcile_pass": {"ReconcilerLogGroup"},
}
BOTH_LOG_GROUPS = {"SubmitLogGroup", "ReconcilerLogGroup"}

ROUTES = {("POST", "/messages"), ("GET", "/messages/{messageId}")}
API_GATEWAY_INTEGRATION_LIMIT_SECONDS = 30

ATTENTION_INDEX = {
    "IndexName": "attention",
    "KeySchema": [
        {"AttributeName": "sg_attention", "KeyType": "HASH"},
        {"AttributeName": "sg_attention_at", "KeyType": "RANGE"},
    ],
    # Keys only: each index write is one write unit whatever the body's size; the reconciler reads
    # the records themselves by key (BatchGetItem, strongly consistent).
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


# ---- reading the template ------------------------------------------------------------------------


def load(text: str) -> Template:
    """The template as plain data (intrinsic functions as their long forms), safe to copy."""
    template, errors = decode_str(text)
    assert not errors and template is not None, [str(e) for e in errors]
    plain: Template = json.loads(json.dumps(template))
    return plain


@cache
def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@cache
def loaded() -> Template:
    return load(template_text())


@pytest.fixture
def template() -> Template:
    """A fresh copy for each test, so a test that breaks it breaks only its own."""
    return copy.deepcopy(loaded())


def resources(t: Template, kind: str | None = None) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in t.get("Resources", {}).items() if kind is None or r.get("Type") == kind}


def props(t: Template, name: str) -> dict[str, Any]:
    result: dict[str, Any] = t["Resources"][name].get("Properties", {})
    return result


def merged(base: Any, override: Any) -> Any:
    """SAM's Globals rule for maps: keys merge, the resource's own value wins."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return override


def function_props(t: Template, name: str) -> dict[str, Any]:
    """A function's properties with the template's Globals applied."""
    result: dict[str, Any] = merged(t.get("Globals", {}).get("Function", {}), props(t, name))
    return result


def functions(t: Template) -> dict[str, dict[str, Any]]:
    return {**resources(t, "AWS::Serverless::Function"), **resources(t, "AWS::Lambda::Function")}


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere in the template (roles, policies, resource policies)."""
    if isinstance(node, dict):
        if "Statement" in node:
            yield from (s for s in listed(node["Statement"]) if isinstance(s, dict))
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def strings(node: Any) -> Iterator[str]:
    """Every string inside an expression, intrinsic functions included (a !Sub's text too)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def resource_name(expr: Any) -> str:
    """A policy resource as a symbolic name: this stack's resource it points at, or its repr."""
    if isinstance(expr, dict) and list(expr) == ["Fn::GetAtt"]:
        target, attribute = expr["Fn::GetAtt"]
        if attribute == "Arn":
            return str(target)
    if isinstance(expr, dict) and list(expr) == ["Fn::Sub"] and isinstance(expr["Fn::Sub"], str):
        if expr["Fn::Sub"] == BODY_OBJECTS:
            return f"{BUCKET}/objects"
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(/[\w/]+)", expr["Fn::Sub"])
        if match:
            return match[1] + match[2]
    return repr(expr)


def ref_name(expr: Any) -> str | None:
    if isinstance(expr, dict) and list(expr) == ["Ref"]:
        return str(expr["Ref"])
    return None


def role_of(t: Template, function: str) -> str | None:
    role = props(t, function).get("Role")
    if isinstance(role, dict) and list(role) == ["Fn::GetAtt"] and role["Fn::GetAtt"][1] == "Arn":
        return str(role["Fn::GetAtt"][0])
    return None


def role_policies(t: Template, role: str) -> list[dict[str, Any]]:
    """The role's inline policies and every AWS::IAM::Policy attached to it."""
    documents = [p["PolicyDocument"] for p in props(t, role).get("Policies", [])]
    for policy in resources(t, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy.get("Properties", {}).get("Roles", []):
            documents.append(policy["Properties"]["PolicyDocument"])
    return documents


def grants(t: Template, role: str) -> set[tuple[str, str]]:
    return {
        (action, resource_name(resource))
        for document in role_policies(t, role)
        for statement in statements(document)
        if statement.get("Effect") == "Allow"
        for action in listed(statement.get("Action", []))
        for resource in listed(statement.get("Resource", []))
    }


def parameter_default(t: Template, expr: Any) -> Any:
    if isinstance(expr, dict) and list(expr) == ["Ref"] and expr["Ref"] in t.get("Parameters", {}):
        return t["Parameters"][expr["Ref"]].get("Default")
    return expr


# ---- the checkers --------------------------------------------------------------------------------


def lint_problems(text: str, regions: list[str]) -> list[str]:
    """cfn-lint with every rule, informational ones included."""
    matches = lint(text, config=ManualArgs(include_checks=["I"], regions=regions))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]


def wildcard_problems(t: Template) -> list[str]:
    """No `*` in any Action or Resource of any statement that allows, and no NotAction / NotResource.

    The logs grants name `!GetAtt LogGroup.Arn`, which AWS renders as the group's ARN followed by
    `:*` (its log streams, which Lambda names at run time): the narrowest grant for writing logs.
    `privilege_problems` pins each function's logs grants to its own log group.

    One `*` is allowed: the body objects' BODY_OBJECTS, for the object actions, since object keys are
    made at run time ({prefix}{message_id}/{nonce}); it is as narrow as the prefix, so the prefix
    parameter must admit neither "" (the whole bucket) nor a wildcard. A Deny's wildcards (the bucket
    policy's TLS rule) take away, never grant."""
    problems = []
    for statement in statements(t):
        sid = statement.get("Sid", "?")
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"statement {sid}: {key} grants everything not listed")
        if statement.get("Effect") == "Deny":
            continue
        actions = listed(statement.get("Action", []))
        for action in actions:
            if not isinstance(action, str) or "*" in action:
                problems.append(f"statement {sid}: wildcard or computed action {action!r}")
        for resource in listed(statement.get("Resource", [])):
            if resource_name(resource) == f"{BUCKET}/objects" and set(actions) <= OBJECT_ACTIONS:
                continue
            if any("*" in s for s in strings(resource)):
                problems.append(f"statement {sid}: wildcard resource {resource!r}")
    prefix = t.get("Parameters", {}).get(BODY_PREFIX)
    if prefix is not None:
        pattern = prefix.get("AllowedPattern")
        if not isinstance(pattern, str):
            problems.append(f"{BODY_PREFIX}: no AllowedPattern, so its grants may cover any object")
        else:
            for value in ("", "*", "bodies/*", "?/", "bodies/?/"):
                if re.fullmatch(pattern, value):
                    problems.append(f"{BODY_PREFIX}: admits {value!r}, widening its grants")
            default = prefix.get("Default")
            if not isinstance(default, str) or not re.fullmatch(pattern, default):
                problems.append(f"{BODY_PREFIX}: its default {default!r} breaks its own pattern")
    return problems


def privilege_problems(t: Template) -> list[str]:
    """Each function has its own role granting exactly the contract's actions on this stack's
    resources; nothing else in the template grants IAM permissions."""
    problems = []
    roles = {}
    for function in functions(t):
        role = role_of(t, function)
        if role is None or role not in resources(t, "AWS::IAM::Role"):
            problems.append(f"{function}: no explicit role of its own (SAM would attach managed policies)")
            continue
        roles[function] = role
        if "Policies" in props(t, function):
            problems.append(f"{function}: SAM Policies besides its role")
        role_props = props(t, role)
        for key in ("ManagedPolicyArns", "PermissionsBoundary"):
            if key in role_props:
                problems.append(f"{role}: {key} adds permissions the tests cannot see")
        trust = {
            (s.get("Effect"), json.dumps(s.get("Principal"), sort_keys=True), json.dumps(s.get("Action")))
            for s in statements(role_props.get("AssumeRolePolicyDocument", {}))
        }
        lambda_only = ("Allow", json.dumps({"Service": "lambda.amazonaws.com"}), json.dumps("sts:AssumeRole"))
        if trust != {lambda_only}:
            problems.append(f"{role}: trust policy is not Lambda's alone: {sorted(trust)}")
        granted = grants(t, role)
        expected = GRANTS.get(function)
        if expected is None:
            problems.append(f"{function}: not a function of the contract")
            continue
        for action, resource in sorted(granted - expected):
            problems.append(f"{function}: grants {action} on {resource} beyond the contract")
        for action, resource in sorted(expected - granted):
            problems.append(f"{function}: lacks {action} on {resource}")
        for action in sorted({a for a, _ in granted} & FORBIDDEN[function]):
            problems.append(f"{function}: can {action}")
    if set(roles) != set(GRANTS):
        problems.append(f"functions with roles: {sorted(roles)}, expected {sorted(GRANTS)}")
    if len(set(roles.values())) != len(roles):
        problems.append("two functions share a role")
    other_iam = {
        name
        for name, r in resources(t).items()
        if r["Type"].startswith("AWS::IAM::") and name not in roles.values()
    }
    if other_iam:
        problems.append(f"IAM resources beyond the functions' roles: {sorted(other_iam)}")
    return problems


def environment_problems(t: Template) -> list[str]:
    problems = []
    for function in GRANTS:
        variables = function_props(t, function).get("Environment", {}).get("Variables", {})
        for name, expected in ENVIRONMENT.items():
            if name not in variables:
                problems.append(f"{function}: {name} is not set")
                continue
            value = parameter_default(t, variables[name])
            if str(value) != str(expected):
                problems.append(f"{function}: {name} is {value!r}, the contract says {expected!r}")
        max_attempts = variables.get("SENDGUARD_MAX_ATTEMPTS")
        if isinstance(max_attempts, dict) and "Ref" in max_attempts:
            limit = t.get("Parameters", {}).get(max_attempts["Ref"], {}).get("MaxValue")
            if limit is None or int(limit) > MAX_ATTEMPTS_LIMIT:
                problems.append(f"{function}: SENDGUARD_MAX_ATTEMPTS may exceed {MAX_ATTEMPTS_LIMIT}")
    return problems


def runtime_problems(t: Template) -> list[str]:
    """The template agrees with the code that runs under it: every value a parameter admits is one
    the functions' configuration accepts (so a deployment never starts functions that refuse their
    environment), and the table is the one `sendguard provision` creates for local runs."""
    problems = []
    variables = function_props(t, SUBMIT).get("Environment", {}).get("Variables", {})
    base = {name: _rendered(t, parameter_default(t, value)) for name, value in variables.items()}
    for name, value in variables.items():
        parameter = t.get("Parameters", {}).get(ref_name(value) or "")
        if parameter is None:
            continue
        if parameter.get("Type") == "Number" and "AllowedValues" not in parameter:
            if "MinValue" not in parameter or "MaxValue" not in parameter:
                problems.append(f"{name}: parameter {ref_name(value)} has no MinValue or MaxValue")
                continue
            admitted = [parameter["MinValue"], parameter["MaxValue"]]
        else:
            admitted = parameter.get("AllowedValues", [parameter.get("Default")])
        for candidate in admitted:
            try:
                Config.from_env({**base, name: str(candidate)})
            except ConfigError as exc:
                problems.append(f"{name}: the stack admits {candidate!r}, the functions refuse it: {exc}")
    table = props(t, "Table") if "Table" in resources(t) else {}
    for key, expected in TABLE_DEFINITION.items():
        if table.get(key) != expected:
            problems.append(f"Table {key} differs from `sendguard provision`'s: {table.get(key)!r}")
    return problems


# What a !Ref to each kind of resource renders as once deployed: a sample of its physical id.
SAMPLE_REFS = {
    "AWS::DynamoDB::Table": "sendguard-prod-Table-1A2B3C4D5E6F",
    "AWS::SQS::Queue": "https://sqs.eu-west-1.amazonaws.com/123456789012/sendguard-prod-Queue-1A2B3C4D5E6F",
    "AWS::S3::Bucket": "sendguard-prod-bodybucket-1a2b3c4d5e6f",
}


def _rendered(t: Template, value: Any) -> str:
    """A variable's value as a deployed function sees it (a !Sub with a sample stack name, a !Ref to
    a resource as a sample of its physical id)."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"]).replace("${AWS::StackName}", "sendguard-prod")
    kind = resources(t).get(ref_name(value) or "", {}).get("Type")
    if kind in SAMPLE_REFS:
        return SAMPLE_REFS[kind]
    return str(value)


def table_problems(t: Template) -> list[str]:
    tables = resources(t, "AWS::DynamoDB::Table")
    if list(tables) != ["Table"]:
        return [f"expected one table named Table, found {sorted(tables)}"]
    p = props(t, "Table")
    problems = []
    if p.get("BillingMode") != "PAY_PER_REQUEST":
        problems.append(f"BillingMode is {p.get('BillingMode')!r}, not PAY_PER_REQUEST (on-demand)")
    if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.append("point-in-time recovery is off")
    if p.get("DeletionProtectionEnabled") is not True:
        problems.append("deletion protection is off")
    if tables["Table"].get("DeletionPolicy") != "Retain":
        problems.append("DeletionPolicy is not Retain: deleting the stack would delete the records")
    if p.get("KeySchema") != [{"AttributeName": "message_id", "KeyType": "HASH"}]:
        problems.append(f"key schema {p.get('KeySchema')!r}: the contract is message_id (S), no sort key")
    if p.get("GlobalSecondaryIndexes") != [ATTENTION_INDEX]:
        problems.append(f"indexes {p.get('GlobalSecondaryIndexes')!r}: the contract is `attention` alone")
    if "LocalSecondaryIndexes" in p:
        problems.append("local secondary indexes: the contract has none")
    if p.get("TimeToLiveSpecification", {}).get("Enabled"):
        problems.append("TTL is on: the records are the audit trail")
    attributes = {(a["AttributeName"], a["AttributeType"]) for a in p.get("AttributeDefinitions", [])}
    if attributes != {("message_id", "S"), ("sg_attention", "S"), ("sg_attention_at", "N")}:
        problems.append(f"attribute definitions {sorted(attributes)}")
    return problems


def queue_problems(t: Template) -> list[str]:
    queues = resources(t, "AWS::SQS::Queue")
    if set(queues) != {"Queue", "DeadLetterQueue"}:
        return [f"expected Queue and DeadLetterQueue, found {sorted(queues)}"]
    problems = []
    for name in queues:
        p = props(t, name)
        if p.get("SqsManagedSseEnabled") is not True:
            problems.append(f"{name}: no SQS-managed server-side encryption")
        if "KmsMasterKeyId" in p:
            problems.append(f"{name}: a KMS key, whose permissions the functions do not have")
    redrive = props(t, "Queue").get("RedrivePolicy", {})
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}:
        problems.append("Queue: no redrive policy to DeadLetterQueue")
    if "maxReceiveCount" not in redrive:
        problems.append("Queue: the redrive policy has no maxReceiveCount")
    if "RedrivePolicy" in props(t, "DeadLetterQueue"):
        problems.append("DeadLetterQueue: a dead-letter queue of its own")
    return problems


def condition_holds(t: Template, expr: Any, parameters: dict[str, Any]) -> bool:
    """A condition's value when the parameters are these (the others at their defaults)."""
    if isinstance(expr, dict) and list(expr) == ["Condition"]:
        return condition_holds(t, t.get("Conditions", {})[expr["Condition"]], parameters)
    if isinstance(expr, dict) and len(expr) == 1:
        function, args = next(iter(expr.items()))
        if function == "Fn::Not":
            return not condition_holds(t, args[0], parameters)
        if function == "Fn::And":
            return all(condition_holds(t, a, parameters) for a in args)
        if function == "Fn::Or":
            return any(condition_holds(t, a, parameters) for a in args)
        if function == "Fn::Equals":
            values = {str(_value(t, a, parameters)) for a in args}
            return len(values) == 1
    raise AssertionError(f"not a condition: {expr!r}")


def _value(t: Template, expr: Any, parameters: dict[str, Any]) -> Any:
    name = ref_name(expr)
    if name is not None and name in t.get("Parameters", {}):
        return parameters.get(name, t["Parameters"][name].get("Default"))
    return expr


NO_VALUE = {"Ref": "AWS::NoValue"}


def lifecycle_rules(t: Template, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules as deployed with these parameters: an Fn::If resolved (in a rule
    or in one of its properties), AWS::NoValue dropped."""

    def resolved(node: Any) -> Any:
        if isinstance(node, dict) and list(node) == ["Fn::If"]:
            condition, then, otherwise = node["Fn::If"]
            held = condition_holds(t, {"Condition": condition}, parameters)
            return resolved(then if held else otherwise)
        if isinstance(node, dict):
            return {k: r for k, v in node.items() if (r := resolved(v)) != NO_VALUE}
        if isinstance(node, list):
            return [r for v in node if (r := resolved(v)) != NO_VALUE]
        return node

    rules = props(t, BUCKET).get("LifecycleConfiguration", {}).get("Rules", [])
    found: list[dict[str, Any]] = resolved(rules)
    return found


def bucket_problems(t: Template) -> list[str]:
    """The bodies' bucket: private, TLS only, encrypted, retained, and its lifecycle (incomplete
    uploads aborted, bodies to STANDARD_IA after 30 days, expired only when BodyRetentionDays > 0)."""
    buckets = resources(t, "AWS::S3::Bucket")
    if list(buckets) != [BUCKET]:
        return [f"expected one bucket named {BUCKET}, found {sorted(buckets)}"]
    problems = []
    bucket, p = buckets[BUCKET], props(t, BUCKET)
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if bucket.get(policy) != "Retain":
            problems.append(f"{BUCKET}: {policy} is not Retain: accepted messages' bodies would go")
    block = p.get("PublicAccessBlockConfiguration", {})
    for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        if block.get(flag) is not True:
            problems.append(f"{BUCKET}: public access block {flag} is not true")
    if p.get("OwnershipControls", {}).get("Rules") != [{"ObjectOwnership": "BucketOwnerEnforced"}]:
        problems.append(f"{BUCKET}: ACLs are not disabled (ObjectOwnership BucketOwnerEnforced)")
    encryption = [
        rule.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        for rule in p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    ]
    if encryption != ["AES256"]:
        problems.append(
            f"{BUCKET}: default encryption {encryption}, not SSE-S3 (the functions have no KMS grant)"
        )

    prefix = {"Ref": BODY_PREFIX}
    never, expires = lifecycle_rules(t, {}), lifecycle_rules(t, {"BodyRetentionDays": 400})
    enabled = [r for r in never if r.get("Status") == "Enabled"]
    if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in enabled):
        problems.append(f"{BUCKET}: incomplete multipart uploads are not aborted after a day")
    transitions = {
        (json.dumps(r.get("Prefix")), t_.get("StorageClass"), str(t_.get("TransitionInDays")))
        for r in enabled
        for t_ in r.get("Transitions", [])
    }
    if (json.dumps(prefix), "STANDARD_IA", "30") not in transitions:
        problems.append(f"{BUCKET}: bodies are not moved to STANDARD_IA after 30 days")
    expirations = ("ExpirationInDays", "ExpirationDate")
    if any(key in r for r in never for key in expirations):
        problems.append(f"{BUCKET}: bodies expire at the default BodyRetentionDays (0: never)")
    if not any(
        r.get("Status") == "Enabled"
        and r.get("Prefix") == prefix
        and str(_value(t, r.get("ExpirationInDays"), {"BodyRetentionDays": 400})) == "400"
        for r in expires
    ):
        problems.append(f"{BUCKET}: bodies do not expire after BodyRetentionDays when it is set")

    policies = [
        r["Properties"].get("PolicyDocument", {})
        for r in resources(t, "AWS::S3::BucketPolicy").values()
        if r.get("Properties", {}).get("Bucket") == {"Ref": BUCKET}
    ]
    if not any(_denies_plain_http(s_) for policy in policies for s_ in statements(policy)):
        problems.append(f"{BUCKET}: no bucket policy denies every request without TLS (aws:SecureTransport)")
    for policy in policies:
        for s_ in statements(policy):
            if s_.get("Effect") != "Deny":
                problems.append(
                    f"{BUCKET}: its policy allows {s_.get('Action')!r}: grants belong in the roles"
                )
    return problems


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    """Denies everyone every S3 action on the bucket and its objects when the request has no TLS,
    with no other condition narrowing it."""
    condition = statement.get("Condition", {})
    covered = {json.dumps(r, sort_keys=True) for r in listed(statement.get("Resource", []))}
    bucket_and_objects = {
        json.dumps({"Fn::GetAtt": [BUCKET, "Arn"]}),
        json.dumps({"Fn::Sub": f"${{{BUCKET}.Arn}}/*"}),
    }
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and "s3:*" in listed(statement.get("Action", []))
        and bucket_and_objects <= covered
        and list(condition) == ["Bool"]
        and list(condition["Bool"]) == ["aws:SecureTransport"]
        and str(condition["Bool"]["aws:SecureTransport"]).lower() == "false"
    )


def metric_filters(t: Template) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(namespace, metric) -> the filters that publish it: their log group, event, code and value."""
    published: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in resources(t, "AWS::Logs::MetricFilter").values():
        p = f["Properties"]
        pattern = p.get("FilterPattern", "")
        event = re.search(r'\$\.event\s*=\s*"(\w+)"', pattern)
        code = re.search(r'\$\.code\s*=\s*"(\w+)"', pattern)
        for transformation in p.get("MetricTransformations", []):
            key = (json.dumps(transformation["MetricNamespace"]), transformation["MetricName"])
            published.setdefault(key, []).append(
                {
                    "log_group": ref_name(p.get("LogGroupName")),
                    "event": event[1] if event else None,
                    "code": code[1] if code else None,
                    "value": str(transformation["MetricValue"]),
                    "fields": sorted(set(re.findall(r"\$\.(\w+)", pattern))),
                }
            )
    return published


def emf_metrics(t: Template) -> dict[tuple[str, str], tuple[str, ...]]:
    """(namespace, metric) -> its dimension names, for every EMF metric the functions write
    (adapters.runtime.metrics), in the namespace their environment gives them."""
    namespaces = {
        json.dumps(function_props(t, f).get("Environment", {}).get("Variables", {}).get(
            "SENDGUARD_METRICS_NAMESPACE", "sendguard"))
        for f in HANDLERS
    }  # fmt: skip
    return {(ns, name): dims for ns in namespaces for name, dims in EMF_DIMENSIONS.items()}


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(id, metric) for every metric an alarm reads; a single-metric alarm's id is ''."""
    p = alarm["Properties"]
    if "MetricName" in p:
        return [("", {k: p.get(k) for k in ("Namespace", "MetricName", "Dimensions")})]
    return [(m["Id"], m["MetricStat"]["Metric"]) for m in p.get("Metrics", []) if "MetricStat" in m]


def filter_problems(t: Template) -> list[str]:
    """Every metric filter reads a log line of the contract, in a log group that has such lines,
    and a field that line has."""
    problems = []
    for (_, metric), filters in metric_filters(t).items():
        for f in filters:
            if f["event"] not in LOG_EVENTS:
                problems.append(f"{metric}: the filter matches no log event of the contract")
                continue
            if f["log_group"] not in LOGGED_BY.get(f["event"], BOTH_LOG_GROUPS):
                problems.append(f"{metric}: {f['event']!r} lines are never written to {f['log_group']}")
            value = f["value"]
            if value != "1" and value.removeprefix("$.") not in LOG_EVENTS[f["event"]]:
                problems.append(f"{metric}: {value} is not a field of {f['event']!r} lines")
            for field in f["fields"]:
                if field not in LOG_EVENTS[f["event"]]:
                    problems.append(
                        f"{metric}: the filter reads $.{field}, not a field of {f['event']!r} lines"
                    )
    return problems


def alarm_problems(t: Template) -> list[str]:
    """The alarms the issue names, each on the metric that means it, each notifying someone."""
    problems = []
    alarms = resources(t, "AWS::CloudWatch::Alarm")
    published = metric_filters(t)

    def sources(metric: dict[str, Any]) -> list[dict[str, Any]]:
        return published.get((json.dumps(metric.get("Namespace")), metric.get("MetricName", "")), [])

    emf = emf_metrics(t)

    def emitted(metric: dict[str, Any]) -> tuple[str, ...] | None:
        return emf.get((json.dumps(metric.get("Namespace")), metric.get("MetricName", "")))

    for name, alarm in alarms.items():
        if not alarm["Properties"].get("AlarmActions"):
            problems.append(f"{name}: notifies no one")
        for _, metric in alarm_metrics(alarm):
            dims = emitted(metric)
            if not str(metric.get("Namespace")).startswith("AWS/") and not sources(metric) and dims is None:
                problems.append(
                    f"{name}: no metric filter or EMF document publishes {metric.get('MetricName')}"
                )
            names = tuple(d.get("Name") for d in metric.get("Dimensions") or [])
            if dims is not None and tuple(sorted(names)) != tuple(sorted(dims)):
                problems.append(f"{name}: dimensions {names}, but the metric is published with {dims}")

    def expect(name: str, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
        if name not in alarms:
            problems.append(f"{name}: missing ({what})")
        elif not condition(alarms[name]):
            problems.append(f"{name}: is not {what}")

    def reads(
        alarm: dict[str, Any], event: str, value: str, groups: set[str], code: str | None = None
    ) -> bool:
        for _, metric in alarm_metrics(alarm):
            found = [f for f in sources(metric) if f["event"] == event and f["code"] == code]
            if found and {f["value"] for f in found} == {value} and {f["log_group"] for f in found} == groups:
                return True
        return False

    expect(
        "InFlightPastLeaseAlarm",
        lambda a: reads(a, "reconcile_pass", "$.overdue_in_flight", {"ReconcilerLogGroup"}),
        "on reconcile_pass's overdue_in_flight",
    )

    def on_emf(alarm: dict[str, Any], metric: str, statistic: str) -> bool:
        p = alarm["Properties"]
        return [(i, emitted(m) is not None, m.get("MetricName")) for i, m in alarm_metrics(alarm)] == [
            ("", True, metric)
        ] and p.get("Statistic") == statistic

    expect(
        "ExhaustedAlarm",
        lambda a: (
            on_emf(a, "Exhausted", "Sum")
            and a["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
            and str(a["Properties"].get("Threshold")) == "0"
        ),
        "on the EMF metric Exhausted, any record flagged",
    )
    expect(
        "BacklogAlarm",
        lambda a: (
            on_emf(a, "ReconcilerDue", "Minimum")
            and int(a["Properties"].get("EvaluationPeriods", 1)) >= 2
            and int(a["Properties"].get("DatapointsToAlarm", a["Properties"].get("EvaluationPeriods", 1)))
            == int(a["Properties"].get("EvaluationPeriods", 1))
            and a["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
        ),
        "on the EMF metric ReconcilerDue staying high (Minimum, over several periods)",
    )
    expect(
        "DeadLetterQueueDepthAlarm",
        lambda a: (
            alarm_metrics(a)
            == [
                (
                    "",
                    {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [
                            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
                        ],
                    },
                )
            ]
        ),
        "on the dead-letter queue's visible messages",
    )

    def error_rate(alarm: dict[str, Any]) -> bool:
        ids = {i: m for i, m in alarm_metrics(alarm) if any(f["event"] == "answer" for f in sources(m))}
        errors = [i for i, m in ids.items() if any(f["code"] == "SYSTEM_ERROR" for f in sources(m))]
        answers = [i for i, m in ids.items() if any(f["code"] is None for f in sources(m))]
        returned = [m for m in alarm["Properties"].get("Metrics", []) if m.get("ReturnData", True)]
        text = " ".join(strings([m.get("Expression", "") for m in returned]))
        return bool(errors and answers) and all(re.search(rf"\b{i}\b", text) for i in errors + answers)

    expect("SystemErrorRateAlarm", error_rate, "SYSTEM_ERROR answers divided by all answers")
    expect(
        "ReconcilerNotRunningAlarm",
        lambda a: (
            on_emf(a, "ReconcilerDue", "SampleCount")
            and a["Properties"].get("TreatMissingData") == "breaching"
            and a["Properties"].get("ComparisonOperator") == "LessThanThreshold"
        ),
        "a heartbeat on the passes' ReconcilerDue samples that treats missing data as breaching",
    )
    expect(
        "ReconcilerFailuresAlarm",
        lambda a: reads(a, "reconcile_pass", "$.failed", {"ReconcilerLogGroup"}),
        "on reconcile_pass's failed",
    )
    return problems


def function_problems(t: Template) -> list[str]:
    """Handlers, routes, schedule, timeouts, logging and the reconciler's concurrency."""
    problems = []
    for function, handler in HANDLERS.items():
        if function not in resources(t):
            problems.append(f"{function}: missing")
            continue
        p = function_props(t, function)
        if p.get("Handler") != handler:
            problems.append(f"{function}: handler {p.get('Handler')!r}, the contract says {handler!r}")
        if p.get("LoggingConfig", {}).get("LogGroup") != {"Ref": LOG_GROUPS[function]}:
            problems.append(f"{function}: does not log to {LOG_GROUPS[function]}, where its filters look")
    if problems:
        return problems
    submit, reconciler = function_props(t, SUBMIT), function_props(t, RECONCILER)
    routes = {
        (e["Properties"].get("Method"), e["Properties"].get("Path"))
        for e in submit.get("Events", {}).values()
        if e.get("Type") == "HttpApi"
    }
    if routes != ROUTES:
        problems.append(f"{SUBMIT}: routes {sorted(routes)}, the contract is {sorted(ROUTES)}")
    if int(submit.get("Timeout", 3)) >= API_GATEWAY_INTEGRATION_LIMIT_SECONDS:
        problems.append(f"{SUBMIT}: timeout reaches API Gateway's {API_GATEWAY_INTEGRATION_LIMIT_SECONDS} s")
    schedules = [
        e["Properties"].get("Schedule")
        for e in reconciler.get("Events", {}).values()
        if e.get("Type") == "Schedule"
    ]
    if schedules != ["rate(1 minute)"]:
        problems.append(f"{RECONCILER}: schedules {schedules}, expected one, every minute")
    elif int(reconciler.get("Timeout", 3)) > 60:
        problems.append(f"{RECONCILER}: a pass may outlast the one-minute interval")
    concurrency = reconciler.get("ReservedConcurrentExecutions")
    if isinstance(concurrency, dict) and "Fn::If" in concurrency:
        concurrency = concurrency["Fn::If"][1]
    if str(parameter_default(t, concurrency)) != "1":
        problems.append(
            f"{RECONCILER}: reserved concurrency {parameter_default(t, concurrency)!r} by default, not 1"
        )
    return problems


def test_the_function_build_ships_the_packages_with_their_bytecode(tmp_path: Path) -> None:
    """`sam build`'s step for a function (`make build-SubmitFunction`): the two packages and, for
    every module, bytecode that the interpreter loads without checking the source (the zip does not
    keep file times); run here by this interpreter, as `sam build` runs it by the runtime's."""
    function_package(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapters", "statemodel"]
    sources = sorted(tmp_path.rglob("*.py"))
    assert len(sources) > 50 and not list(tmp_path.rglob("test_*.py"))
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")  # PEP 552: 0b01 hash, unchecked
        assert flags == 0b01, (source, flags)
    loaded = subprocess.run(
        [sys.executable, "-c", "import adapters.aws_lambda as m; print(m.__cached__)"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,  # not the repository, whose own packages would come first
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip().startswith(str(tmp_path))


def requirement_names(lines: list[str]) -> list[str]:
    return sorted(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def packaging_problems(t: Template) -> list[str]:
    """The functions' code is the repository root, and the layer carries pyproject's runtime deps."""
    problems = []
    layers = resources(t, "AWS::Serverless::LayerVersion")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for function in HANDLERS:
        p = function_props(t, function)
        code = p.get("CodeUri")
        if not isinstance(code, str) or (TEMPLATE.parent / code).resolve() != ROOT:
            problems.append(f"{function}: CodeUri {code!r} is not the repository root")
        if (t["Resources"][function].get("Metadata") or {}).get("BuildMethod") != "makefile":
            problems.append(f"{function}: not built by the Makefile (its bytecode would not ship)")
        elif not re.search(rf"^[^#\n]*\bbuild-{function}\b[^\n]*:", makefile, re.MULTILINE):
            problems.append(f"{function}: the Makefile has no build-{function} target")
        used = [layer["Ref"] for layer in p.get("Layers", []) if isinstance(layer, dict) and "Ref" in layer]
        if not used or any(name not in layers for name in used):
            problems.append(f"{function}: no dependencies layer from this template")
        for name in used:
            if name not in layers:
                continue
            layer = layers[name]
            if p.get("Runtime") not in layer["Properties"].get("CompatibleRuntimes", []):
                problems.append(f"{name}: not built for {function}'s runtime {p.get('Runtime')}")
            if layer.get("Metadata", {}).get("BuildMethod") != p.get("Runtime"):
                problems.append(f"{name}: BuildMethod differs from {function}'s runtime")
            if [layer.get("Metadata", {}).get("BuildArchitecture")] != p.get("Architectures"):
                problems.append(f"{name}: BuildArchitecture differs from {function}'s architecture")
    dependencies = sorted(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"])
    for name, layer in layers.items():
        path = (TEMPLATE.parent / layer["Properties"]["ContentUri"] / "requirements.txt").resolve()
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if not path.is_file():
            problems.append(f"{name}: no {shown}")
        elif requirement_names(path.read_text(encoding="utf-8").splitlines()) != dependencies:
            problems.append(f"{name}: {shown} differs from pyproject.toml's dependencies")
    return problems


def guide_problems(t: Template, guide: str) -> list[str]:
    """The operations guide has a section for every alarm in the template, each with a command or
    query to run, and covers deploying, the CLIs and the correlation-id query."""
    problems = []
    headings = re.finditer(r"(?ms)^###\s+`?(\w+)`?\s*$(.*?)(?=^##)", guide + "\n##")
    sections = {m[1]: m[2] for m in headings}
    for alarm in resources(t, "AWS::CloudWatch::Alarm"):
        if alarm not in sections:
            problems.append(f"{alarm}: no section in docs/operations.md")
        elif "```" not in sections[alarm]:
            problems.append(f"{alarm}: its section gives no command or query")
    for phrase in (
        "sam build",
        "sam deploy --guided",
        "sendguard audit",
        "sendguard reconcile",
        "sendguard status",
        "sendguard redrive --exhausted",
        "correlation_id",
    ):
        if phrase not in guide:
            problems.append(f"docs/operations.md never mentions {phrase!r}")
    return problems


# ---- the checks hold ---------------------------------------------------------------------------------

CHECKS: dict[str, Check] = {
    "wildcards": wildcard_problems,
    "least privilege": privilege_problems,
    "environment": environment_problems,
    "runtime": runtime_problems,
    "table": table_problems,
    "queue": queue_problems,
    "bucket": bucket_problems,
    "metric filters": filter_problems,
    "alarms": alarm_problems,
    "functions": function_problems,
    "packaging": packaging_problems,
}


def test_cfn_lint_passes_in_every_region() -> None:
    assert lint_problems(template_text(), REGIONS) == []


@pytest.mark.parametrize("name", CHECKS)
def test_the_template_passes(name: str, template: Template) -> None:
    assert CHECKS[name](template) == []


def test_the_guide_covers_every_alarm(template: Template) -> None:
    assert guide_problems(template, GUIDE.read_text(encoding="utf-8")) == []


# ---- and each can fail ---------------------------------------------------------------------------


def test_cfn_lint_rejects_a_broken_template() -> None:
    text = template_text()
    assert "BillingMode: PAY_PER_REQUEST" in text
    broken = text.replace("BillingMode: PAY_PER_REQUEST", "BillingMode: ON_DEMAND")
    assert any(p.startswith("E3030") for p in lint_problems(broken, ["us-east-1"]))


def statement(t: Template, role: str, sid: str) -> dict[str, Any]:
    document = props(t, role)["Policies"][0]["PolicyDocument"]
    found: dict[str, Any] = next(s for s in document["Statement"] if s.get("Sid") == sid)
    return found


def add_statement(role: str, action: Any, resource: Any) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        document = props(t, role)["Policies"][0]["PolicyDocument"]
        document["Statement"].append({"Effect": "Allow", "Action": action, "Resource": resource})

    return mutate


TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
QUEUE_ARN = {"Fn::GetAtt": ["Queue", "Arn"]}
OBJECTS_ARN = {"Fn::Sub": BODY_OBJECTS}
B, TLS = f"Resources.{BUCKET}.Properties", "Resources.BodyBucketPolicy.Properties.PolicyDocument.Statement.0"


def setter(path: str, value: Any) -> Callable[[Template], None]:
    """Set (or, with value None, delete) the item at a dotted path; digits index lists."""

    def mutate(t: Template) -> None:
        *parents, last = path.split(".")
        node: Any = t
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


def also(*mutations: Callable[[Template], None]) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        for m in mutations:
            m(t)

    return mutate


def extra_function(t: Template) -> None:
    t["Resources"]["ExtraFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Handler": "x.y", "Policies": ["AmazonDynamoDBFullAccess"]},
    }


def a_public_read(t: Template) -> None:
    document = props(t, "BodyBucketPolicy")["PolicyDocument"]
    document["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJECTS_ARN}
    )


R, G = "Resources", "Globals.Function.Environment.Variables"
BROKEN: list[tuple[str, str, Callable[[Template], None]]] = [
    ("wildcards", "a `*` action", add_statement("SubmitRole", "dynamodb:*", TABLE_ARN)),
    ("wildcards", "a `*` resource", add_statement("ReconcilerRole", "sqs:SendMessage", "*")),
    (
        "wildcards",
        "a `*` inside a !Sub",
        add_statement("SubmitRole", "dynamodb:GetItem", {"Fn::Sub": "${Table.Arn}/*"}),
    ),
    (
        "wildcards",
        "every object of the bucket",
        add_statement("ReconcilerRole", "s3:GetObject", {"Fn::Sub": "${BodyBucket.Arn}/*"}),
    ),
    (
        "wildcards",
        "a non-object action on the body objects",
        add_statement("SubmitRole", "s3:PutObjectAcl", OBJECTS_ARN),
    ),
    ("wildcards", "a prefix of any value", setter(f"Parameters.{BODY_PREFIX}.AllowedPattern", None)),
    ("wildcards", "a prefix that may be empty", setter(f"Parameters.{BODY_PREFIX}.AllowedPattern", ".*")),
    (
        "wildcards",
        "NotAction",
        setter(
            f"{R}.SubmitRole.Properties.Policies.0.PolicyDocument.Statement.0.NotAction", ["s3:GetObject"]
        ),
    ),
    (
        "least privilege",
        "the reconciler reads items",
        add_statement("ReconcilerRole", "dynamodb:GetItem", TABLE_ARN),
    ),
    ("least privilege", "submit queries", add_statement("SubmitRole", "dynamodb:Query", TABLE_ARN)),
    (
        "least privilege",
        "submit batch-reads",
        add_statement("SubmitRole", "dynamodb:BatchGetItem", TABLE_ARN),
    ),
    (
        "least privilege",
        "the reconciler puts items",
        add_statement("ReconcilerRole", "dynamodb:PutItem", TABLE_ARN),
    ),
    (
        "least privilege",
        "the reconciler writes bodies",
        add_statement("ReconcilerRole", "s3:PutObject", OBJECTS_ARN),
    ),
    ("least privilege", "a body deleted", add_statement("SubmitRole", "s3:DeleteObject", OBJECTS_ARN)),
    (
        "least privilege",
        "the bucket listed",
        add_statement("ReconcilerRole", "s3:ListBucket", {"Fn::GetAtt": [BUCKET, "Arn"]}),
    ),
    (
        "least privilege",
        "the reconciler cannot read the bodies",
        setter(f"{R}.ReconcilerRole.Properties.Policies.0.PolicyDocument.Statement.2", None),
    ),
    ("least privilege", "submit scans", add_statement("SubmitRole", "dynamodb:Scan", TABLE_ARN)),
    ("least privilege", "a delete", add_statement("ReconcilerRole", "dynamodb:DeleteItem", TABLE_ARN)),
    ("least privilege", "a purge", add_statement("SubmitRole", "sqs:PurgeQueue", QUEUE_ARN)),
    ("least privilege", "a consumer's delete", add_statement("SubmitRole", "sqs:DeleteMessage", QUEUE_ARN)),
    (
        "least privilege",
        "a grant on another resource",
        add_statement("SubmitRole", "sqs:SendMessage", {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}),
    ),
    (
        "least privilege",
        "a missing grant",
        setter(
            f"{R}.ReconcilerRole.Properties.Policies.0.PolicyDocument.Statement.0.Action", "dynamodb:GetItem"
        ),
    ),
    (
        "least privilege",
        "a managed policy",
        setter(
            f"{R}.SubmitRole.Properties.ManagedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]
        ),
    ),
    (
        "least privilege",
        "a shared role",
        setter(f"{R}.ReconcilerFunction.Properties.Role", {"Fn::GetAtt": ["SubmitRole", "Arn"]}),
    ),
    ("least privilege", "a function with SAM's own role", extra_function),
    ("environment", "a variable missing", setter(f"{G}.SENDGUARD_LOG_LEVEL", None)),
    ("environment", "a wrong default", setter("Parameters.RedriveAfterSeconds.Default", 600)),
    ("environment", "attempts past the limit", setter("Parameters.MaxAttempts.MaxValue", 50)),
    ("environment", "another table", setter(f"{G}.SENDGUARD_TABLE", "some-other-table")),
    ("environment", "no body bucket", setter(f"{G}.SENDGUARD_BODY_BUCKET", None)),
    ("environment", "another body prefix", setter(f"Parameters.{BODY_PREFIX}.Default", "bodies/")),
    (
        "runtime",
        "a re-drive delay the code refuses",
        setter("Parameters.RedriveAfterSeconds.MaxValue", 100_000),
    ),
    ("runtime", "an unbounded parameter", setter("Parameters.LeaseMarginSeconds.MaxValue", None)),
    ("runtime", "a table unlike provision's", setter(f"{R}.Table.Properties.GlobalSecondaryIndexes", [])),
    ("table", "provisioned capacity", setter(f"{R}.Table.Properties.BillingMode", "PROVISIONED")),
    (
        "table",
        "no point-in-time recovery",
        setter(f"{R}.Table.Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled", False),
    ),
    ("table", "no deletion protection", setter(f"{R}.Table.Properties.DeletionProtectionEnabled", None)),
    (
        "table",
        "an index projecting every attribute",
        setter(f"{R}.Table.Properties.GlobalSecondaryIndexes.0.Projection.ProjectionType", "ALL"),
    ),
    (
        "table",
        "another index name",
        setter(f"{R}.Table.Properties.GlobalSecondaryIndexes.0.IndexName", "due"),
    ),
    (
        "table",
        "a TTL",
        setter(f"{R}.Table.Properties.TimeToLiveSpecification", {"AttributeName": "x", "Enabled": True}),
    ),
    ("table", "a deletable table", setter(f"{R}.Table.DeletionPolicy", "Delete")),
    (
        "bucket",
        "public ACLs honoured",
        setter(f"{B}.PublicAccessBlockConfiguration.IgnorePublicAcls", False),
    ),
    ("bucket", "no public access block", setter(f"{B}.PublicAccessBlockConfiguration", None)),
    ("bucket", "no TLS policy", setter(f"{R}.BodyBucketPolicy", None)),
    (
        "bucket",
        "a TLS rule for the bucket but not its objects",
        setter(f"{TLS}.Resource", [{"Fn::GetAtt": [BUCKET, "Arn"]}]),
    ),
    ("bucket", "a TLS rule that allows", setter(f"{TLS}.Effect", "Allow")),
    (
        "bucket",
        "a TLS rule on the wrong key",
        setter(f"{TLS}.Condition", {"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
    ),
    ("bucket", "ACLs enabled", setter(f"{B}.OwnershipControls.Rules.0.ObjectOwnership", "ObjectWriter")),
    ("bucket", "no default encryption", setter(f"{B}.BucketEncryption", None)),
    (
        "bucket",
        "a KMS key the functions cannot use",
        setter(
            f"{B}.BucketEncryption.ServerSideEncryptionConfiguration.0.ServerSideEncryptionByDefault.SSEAlgorithm",
            "aws:kms",
        ),
    ),
    ("bucket", "a deletable bucket", setter(f"{R}.{BUCKET}.DeletionPolicy", "Delete")),
    ("bucket", "uploads never aborted", setter(f"{B}.LifecycleConfiguration.Rules.0", None)),
    (
        "bucket",
        "no move to infrequent access",
        setter(f"{B}.LifecycleConfiguration.Rules.1.Transitions.0.StorageClass", "GLACIER"),
    ),
    (
        "bucket",
        "bodies that always expire",
        setter(
            f"{B}.LifecycleConfiguration.Rules.2",
            {"Id": "x", "Status": "Enabled", "Prefix": {"Ref": BODY_PREFIX}, "ExpirationInDays": 90},
        ),
    ),
    (
        "bucket",
        "bodies that expire by default",
        setter("Parameters.BodyRetentionDays.Default", 90),
    ),
    ("bucket", "bodies that never expire", setter(f"{B}.LifecycleConfiguration.Rules.2", None)),
    ("bucket", "a bucket policy that grants", a_public_read),
    ("queue", "no encryption", setter(f"{R}.Queue.Properties.SqsManagedSseEnabled", None)),
    (
        "queue",
        "an unencrypted dead-letter queue",
        setter(f"{R}.DeadLetterQueue.Properties.SqsManagedSseEnabled", False),
    ),
    ("queue", "no redrive policy", setter(f"{R}.Queue.Properties.RedrivePolicy", None)),
    (
        "metric filters",
        "a field no line has",
        setter(
            f"{R}.OverdueInFlightMetricFilter.Properties.MetricTransformations.0.MetricValue", "$.overdue"
        ),
    ),
    (
        "metric filters",
        "an event no one logs",
        setter(f"{R}.OverdueInFlightMetricFilter.Properties.FilterPattern", '{ $.event = "pass" }'),
    ),
    (
        "metric filters",
        "a pattern on a field the event does not have",
        setter(
            f"{R}.SystemErrorsMetricFilter.Properties.FilterPattern",
            '{ $.event = "answer" && $.error_code = "SYSTEM_ERROR" }',
        ),
    ),
    (
        "metric filters",
        "answers looked for in the reconciler's log group",
        setter(f"{R}.SystemErrorsMetricFilter.Properties.LogGroupName", {"Ref": "ReconcilerLogGroup"}),
    ),
    ("alarms", "an alarm missing", setter(f"{R}.DeadLetterQueueDepthAlarm", None)),
    (
        "alarms",
        "the heartbeat ignores silence",
        setter(f"{R}.ReconcilerNotRunningAlarm.Properties.TreatMissingData", "notBreaching"),
    ),
    (
        "alarms",
        "an alarm on the main queue",
        setter(
            f"{R}.DeadLetterQueueDepthAlarm.Properties.Dimensions.0.Value",
            {"Fn::GetAtt": ["Queue", "QueueName"]},
        ),
    ),
    ("alarms", "no exhausted alarm", setter(f"{R}.ExhaustedAlarm", None)),
    ("alarms", "no backlog alarm", setter(f"{R}.BacklogAlarm", None)),
    (
        "alarms",
        "the exhausted alarm on a metric no one emits",
        setter(f"{R}.ExhaustedAlarm.Properties.MetricName", "Exhaustion"),
    ),
    (
        "alarms",
        "a backlog alarm that pages on one pass",
        setter(f"{R}.BacklogAlarm.Properties.EvaluationPeriods", 1),
    ),
    (
        "alarms",
        "a backlog alarm that adds passes up",
        setter(f"{R}.BacklogAlarm.Properties.Statistic", "Sum"),
    ),
    (
        "alarms",
        "a heartbeat that sums the backlog",
        setter(f"{R}.ReconcilerNotRunningAlarm.Properties.Statistic", "Sum"),
    ),
    (
        "alarms",
        "metrics in another namespace than the alarms'",
        setter(f"{G}.SENDGUARD_METRICS_NAMESPACE", "elsewhere"),
    ),
    (
        "alarms",
        "an EMF alarm with a dimension the metric lacks",
        setter(f"{R}.ExhaustedAlarm.Properties.Dimensions", [{"Name": "Category", "Value": "permanent"}]),
    ),
    (
        "alarms",
        "an alarm on a metric nothing publishes",
        setter(f"{R}.InFlightPastLeaseAlarm.Properties.MetricName", "Overdue"),
    ),
    (
        "alarms",
        "an alarm that notifies no one",
        setter(f"{R}.ExhaustedAlarm.Properties.AlarmActions", []),
    ),
    (
        "alarms",
        "the rate drops its denominator",
        setter(f"{R}.SystemErrorRateAlarm.Properties.Metrics.3.Expression", "errors"),
    ),
    ("functions", "a wrong handler", setter(f"{R}.SubmitFunction.Properties.Handler", "app.handler")),
    ("functions", "a missing route", setter(f"{R}.SubmitFunction.Properties.Events.GetMessage", None)),
    (
        "functions",
        "a submit timeout past API Gateway's",
        setter(f"{R}.SubmitFunction.Properties.Timeout", 60),
    ),
    ("functions", "no schedule", setter(f"{R}.ReconcilerFunction.Properties.Events", {})),
    (
        "functions",
        "unbounded reconciler concurrency",
        setter("Parameters.ReconcilerReservedConcurrency.Default", 0),
    ),
    (
        "functions",
        "logs where no filter looks",
        setter(f"{R}.ReconcilerFunction.Properties.LoggingConfig", None),
    ),
    ("packaging", "code from deploy/", setter("Globals.Function.CodeUri", ".")),
    ("packaging", "a function built without its bytecode", setter(f"{R}.SubmitFunction.Metadata", None)),
    (
        "packaging",
        "a build method the Makefile has no target for",
        setter(f"{R}.ReconcilerFunction.Metadata.BuildMethod", "python3.14"),
    ),
    ("packaging", "no layer", setter("Globals.Function.Layers", [])),
    (
        "packaging",
        "a layer for another runtime",
        setter(f"{R}.DependenciesLayer.Metadata.BuildMethod", "python3.12"),
    ),
    (
        "packaging",
        "a layer for another architecture",
        setter(f"{R}.DependenciesLayer.Metadata.BuildArchitecture", "x86_64"),
    ),
    (
        "packaging",
        "a layer without requirements",
        setter(f"{R}.DependenciesLayer.Properties.ContentUri", "nowhere/"),
    ),
]


@pytest.mark.parametrize(("check", "what", "mutate"), BROKEN, ids=[f"{c}: {w}" for c, w, _ in BROKEN])
def test_each_check_can_fail(
    check: str, what: str, mutate: Callable[[Template], None], template: Template
) -> None:
    broken = copy.deepcopy(template)
    mutate(broken)
    assert broken != template, what
    assert CHECKS[check](broken), f"{check} accepted a template with {what}"


def test_every_check_is_shown_to_fail() -> None:
    assert {check for check, _, _ in BROKEN} == set(CHECKS)


def test_the_guide_check_can_fail(template: Template) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    heading = re.search(r"(?m)^###\s+`?ReconcilerNotRunningAlarm`?\s*$", guide)
    assert heading is not None
    without = guide.replace(heading[0], "### Something else")
    assert any("ReconcilerNotRunningAlarm" in p for p in guide_problems(template, without))
    with_new_alarm = copy.deepcopy(template)
    with_new_alarm["Resources"]["NewAlarm"] = copy.deepcopy(template["Resources"]["ExhaustedAlarm"])
    assert any("NewAlarm" in p for p in guide_problems(with_new_alarm, guide))


def test_requirements_drift_is_caught(template: Template, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("# runtime\nboto3>=1.34\n\nattrs>=23.1\n", encoding="utf-8")
    drifted = copy.deepcopy(template)
    drifted["Resources"]["DependenciesLayer"]["Properties"]["ContentUri"] = str(tmp_path)
    assert any("differs from pyproject.toml" in p for p in packaging_problems(drifted))


# ---- examples/orders/template.yaml: what sendguard adds to a team's stack --------------------------

ORDERS_TEMPLATE = ROOT / "examples" / "orders" / "template.yaml"
# What each function of the orders stack may do, on which resource: sendguard's needs and no more.
ORDERS_GRANTS = {
    "OrdersRole": {
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:GetItem", "OrdersTable"),
        ("dynamodb:PutItem", "OrdersTable"),
        ("sqs:SendMessage", "OrderEvents"),
        ("logs:CreateLogStream", "OrdersLogGroup"),
        ("logs:PutLogEvents", "OrdersLogGroup"),
    },
    "ReconcilerRole": {
        ("dynamodb:Query", "OrdersTable/index/attention"),
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:BatchGetItem", "OrdersTable"),
        ("sqs:SendMessage", "OrderEvents"),
        ("logs:CreateLogStream", "ReconcilerLogGroup"),
        ("logs:PutLogEvents", "ReconcilerLogGroup"),
    },
    # The billing consumer on sendguard's Inbox: its record and its effect, the queue, its logs.
    "BillingRole": {
        ("dynamodb:GetItem", "BillingTable"),
        ("dynamodb:UpdateItem", "BillingTable"),
        ("dynamodb:PutItem", "BillingTable"),
        ("sqs:ReceiveMessage", "OrderEvents"),
        ("sqs:DeleteMessage", "OrderEvents"),
        ("sqs:GetQueueAttributes", "OrderEvents"),
        ("logs:CreateLogStream", "BillingLogGroup"),
        ("logs:PutLogEvents", "BillingLogGroup"),
    },
}


def _resource_name(expr: Any) -> str:
    if isinstance(expr, dict) and "Fn::GetAtt" in expr:
        return str(listed(expr["Fn::GetAtt"])[0]).split(".")[0]
    if isinstance(expr, dict) and "Fn::Sub" in expr:
        return str(expr["Fn::Sub"]).replace("${", "").replace(".Arn}", "")
    return str(expr)


def orders_problems(t: Template) -> list[str]:
    """The index sendguard's reconciler reads, its schedule, and exactly the grants sendguard needs."""
    problems = []
    table = props(t, "OrdersTable")
    if ATTENTION_INDEX not in table.get("GlobalSecondaryIndexes", []):
        problems.append("OrdersTable lacks sendguard's attention index")
    defined = {(a["AttributeName"], a["AttributeType"]) for a in table.get("AttributeDefinitions", [])}
    if not {("sg_attention", "S"), ("sg_attention_at", "N")} <= defined:
        problems.append(f"attribute definitions {sorted(defined)} lack the index keys")
    schedules = [
        e
        for e in function_props(t, "OrdersReconciler").get("Events", {}).values()
        if e.get("Type") == "Schedule"
    ]
    if [e["Properties"].get("Schedule") for e in schedules] != ["rate(1 minute)"]:
        problems.append("the reconciler does not run every minute")
    for role, expected in ORDERS_GRANTS.items():
        granted = {
            (action, _resource_name(resource))
            for policy in props(t, role).get("Policies", [])
            for statement in listed(policy["PolicyDocument"]["Statement"])
            for action in listed(statement["Action"])
            for resource in listed(statement["Resource"])
        }
        if granted != expected:
            problems.append(f"{role} grants {sorted(granted ^ expected)} beyond or short of what it needs")
    return problems


def consumer_problems(t: Template) -> list[str]:
    """The billing consumer (docs/inbox.md's settings): its event source mapping reads the partial
    batch response, the queue hides a message at least 6 x the function's timeout, and a message that
    keeps failing goes to a dead-letter queue only after the inbox has given it up."""
    problems = []
    function = function_props(t, "BillingFunction")
    mappings = [e["Properties"] for e in function.get("Events", {}).values() if e.get("Type") == "SQS"]
    if [m.get("Queue") for m in mappings] != [{"Fn::GetAtt": ["OrderEvents", "Arn"]}]:
        problems.append("BillingFunction is not fed by OrderEvents")
    if any(m.get("FunctionResponseTypes") != ["ReportBatchItemFailures"] for m in mappings):
        problems.append("the event source mapping ignores batchItemFailures (ReportBatchItemFailures)")
    queue = props(t, "OrderEvents")
    if int(queue.get("VisibilityTimeout", 30)) < 6 * int(function["Timeout"]):
        problems.append("OrderEvents' visibility timeout is under 6 x the consumer's timeout")
    redrive = queue.get("RedrivePolicy", {})
    receives = int(function.get("Environment", {}).get("Variables", {}).get("BILLING_MAX_RECEIVES", 3))
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": ["OrderEventsDeadLetters", "Arn"]}:
        problems.append("OrderEvents has no dead-letter queue")
    elif int(redrive.get("maxReceiveCount", 0)) <= receives:
        problems.append("SQS moves a message before the inbox gives it up (maxReceiveCount <= max_receives)")
    return problems


def test_the_orders_template_passes_cfn_lint_in_every_region() -> None:
    assert lint_problems(ORDERS_TEMPLATE.read_text(encoding="utf-8"), REGIONS) == []


def test_the_orders_template_adds_what_sendguard_needs() -> None:
    assert orders_problems(load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))) == []


def test_the_orders_templates_consumer_is_set_as_the_inbox_needs() -> None:
    assert consumer_problems(load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda t: t["Resources"]["BillingFunction"]["Properties"]["Events"]["OrderEvents"]["Properties"].pop(
            "FunctionResponseTypes"
        ),
        lambda t: t["Resources"]["OrderEvents"]["Properties"].update(VisibilityTimeout=60),
        lambda t: t["Resources"]["OrderEvents"]["Properties"].pop("RedrivePolicy"),
        lambda t: t["Resources"]["OrderEvents"]["Properties"]["RedrivePolicy"].update(maxReceiveCount=2),
    ],
    ids=["no partial batch response", "short visibility", "no DLQ", "DLQ before the inbox gives up"],
)
def test_the_consumer_check_can_fail(break_it: Any) -> None:
    broken = load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))
    break_it(broken)
    assert consumer_problems(broken) != []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda t: t["Resources"]["OrdersTable"]["Properties"].pop("GlobalSecondaryIndexes"),
        lambda t: t["Resources"]["OrdersReconciler"]["Properties"].pop("Events"),
        lambda t: t["Resources"]["ReconcilerRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ].pop(0),
        lambda t: t["Resources"]["OrdersRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0][
            "Action"
        ].append("dynamodb:DeleteItem"),
        lambda t: t["Resources"]["BillingRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][
            0
        ]["Action"].append("dynamodb:Scan"),
    ],
    ids=["no index", "no schedule", "reconciler cannot query", "orders may delete", "billing may scan"],
)
def test_the_orders_check_can_fail(break_it: Any) -> None:
    broken = load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))
    break_it(broken)
    assert orders_problems(broken) != []
